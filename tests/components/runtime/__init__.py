"""Tests of runtime, mirroring components/runtime/."""
