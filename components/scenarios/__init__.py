"""The ``scenario`` group: one module per ``conf/scenario/<name>.yaml``, its helpers beside it.

Scenarios sit above every area: they consume the groups they name and record into the
``RunContext``; no area imports a scenario.
"""
