"""``lazy``: ``functools.cached_property`` without the lock Python 3.11 puts around it.

On 3.11 a ``cached_property`` holds one lock per *class attribute*, shared by every
instance, while it computes: two API threads each building their own ``Posting``
waited for each other's database reads (a 32-client benchmark spent most of its
time there). Per-unit-of-work objects are used by one thread only, so they need no
lock at all; the value is stored in the instance's ``__dict__`` exactly as
``cached_property`` stores it.
"""

from __future__ import annotations

from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")


class lazy(Generic[T]):  # noqa: N801 - used like the built-in decorators
    def __init__(self, compute: Callable[[Any], T]):
        self.compute = compute
        self.name = compute.__name__
        self.__doc__ = compute.__doc__

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        value = instance.__dict__[self.name] = self.compute(instance)
        return value
