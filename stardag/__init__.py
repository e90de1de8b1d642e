"""stardag: declarative, composable task DAGs."""

from .errors import (
    BuildInterrupted,
    DependencyCycleError,
    StardagError,
    TargetError,
    TaskDefinitionError,
    TaskOutputMissingError,
    TaskPicklingError,
    WorkerDiedError,
)
from .target import get_target_root, set_target_root, target_root
from .task import AutoTask, SubClass, Task, TaskStruct, auto_namespace

__all__ = [
    "AutoTask",
    "BuildInterrupted",
    "DependencyCycleError",
    "StardagError",
    "SubClass",
    "TargetError",
    "Task",
    "TaskDefinitionError",
    "TaskOutputMissingError",
    "TaskPicklingError",
    "TaskStruct",
    "WorkerDiedError",
    "auto_namespace",
    "get_target_root",
    "set_target_root",
    "target_root",
]
