"""What many areas share to run tasks: the task path, a trial of it, task metrics and plots.

Below the groups: the executor and dataflow groups implement its protocols, and it imports
none of them.
"""
