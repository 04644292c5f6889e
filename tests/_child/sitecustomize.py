"""Started with every child interpreter the tests run (on its PYTHONPATH).

``AIOSCHEDULER_TEST_ENGINE=anyio`` sets the library's private test hook, so
a child runs on the portable engine as the parent's test asks. The library
itself reads no environment variable.
"""

import os

if os.environ.get("AIOSCHEDULER_TEST_ENGINE") == "anyio":
    import aioscheduler.backends

    aioscheduler.backends._PORTABLE = True
