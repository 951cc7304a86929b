"""Running a coroutine from a test, whatever else runs on the test's thread.

Playwright's synchronous API keeps an event loop on the main thread while the browser fixture
lives, so ``asyncio.run`` there would refuse; a thread of its own always has none.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def run(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()
