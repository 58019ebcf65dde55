"""Tests of events, mirroring components/events/."""
