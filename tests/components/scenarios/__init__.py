"""Tests of scenarios, mirroring components/scenarios/."""
