"""Tests of executor, mirroring components/executor/."""
