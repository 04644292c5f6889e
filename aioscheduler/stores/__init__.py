"""Where durable jobs live: the store interface and its implementations.

Import the public names from :mod:`aioscheduler` (``SQLiteStore``,
``JobStore``); the modules here are private.
"""
