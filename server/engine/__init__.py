"""The training engine: one worker thread per device that owns every torch object.

`engine.Engine` is what the rest of the server uses; `engine.py`'s docstring says which module
decides and which acts (worker, scheduler, lifecycle, commands, jobs, frames, trainers,
storage, exports); `snapshot` makes the frames the stream sends.
"""
