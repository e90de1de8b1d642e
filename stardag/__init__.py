"""stardag: declarative, composable task DAGs."""

from .errors import (
    DependencyCycleError,
    StardagError,
    TargetError,
    TaskDefinitionError,
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
    "TaskPicklingError",
    "WorkerDiedError",
    "get_target_root",
    "set_target_root",
    "target_root",
]
