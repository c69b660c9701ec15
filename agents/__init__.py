"""Faust agents: the per-flow request agents (``beat worker``) and the code they run."""
