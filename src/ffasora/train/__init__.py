"""One training engine for every model: tasks, data-parallel steps, EMA, guard, checkpoints, export.

Import the pieces from their modules (``ffasora.train.engine``, ``ffasora.train.tasks``, ...); this package
file stays empty so that ``import ffasora.train.tasks`` does not pull in torch.distributed.
"""
