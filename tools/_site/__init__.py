"""The published benchmark site: self-contained, with an overview page (see publish.py)."""

from _site.publish import SiteReport, finish_site

__all__ = ["SiteReport", "finish_site"]
