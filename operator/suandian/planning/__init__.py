"""A planning round's work, apart from the operator's event loop and kopf.

:mod:`.rounds` (what a round reads, copied on the loop, and how it is computed),
:mod:`.commitments` (what handed-out decisions take, for arrival rounds) and
:mod:`.process` (the planner process that computes full rounds beside the operator).
Nothing here imports kopf or the controllers: the planner process loads only this,
:mod:`suandian.planner` and what a snapshot is built from. The service that runs the
rounds for the operator is :mod:`suandian.controllers.planning`.
"""
