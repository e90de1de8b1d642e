"""stardag: declarative, composable task DAGs."""

from .errors import (
    DependencyCycleError,
    StardagError,
    TargetError,
    TaskDefinitionError,
    TaskOutputMissingError,
    TaskPicklingError,
    WorkerDiedError,
)
from .target import get_target_root, set_target_root, target_root
from .task import AutoTask, Task

__all__ = [
    "AutoTask",
    "DependencyCycleError",
    "StardagError",
    "TargetError",
    "Task",
    "TaskDefinitionError",
    "TaskOutputMissingError",
    "TaskPicklingError",
    "WorkerDiedError",
    "get_target_root",
    "set_target_root",
    "target_root",
]
