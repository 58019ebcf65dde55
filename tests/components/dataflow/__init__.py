"""Tests of dataflow, mirroring components/dataflow/."""
