"""Tests of task_placement, mirroring components/task_placement/."""
