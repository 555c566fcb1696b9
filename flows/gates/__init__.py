"""The Great Expectations gates of a run, run in one worker process (``worker``); the suites and the
gate runner are in ``expectations/``.
"""
