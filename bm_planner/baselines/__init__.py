"""Baselines for the planner: behaviour cloning on the same Stage-2 windows."""
