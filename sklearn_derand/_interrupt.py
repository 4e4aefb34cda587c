"""An interrupted fit leaves the estimator as it was before the fit."""

import functools

__all__ = ["restore_on_interrupt"]


def _interrupted(exc):
    """Whether ``exc`` is, or wraps, a KeyboardInterrupt.

    Ctrl-C inside a compiled numba kernel surfaces as ``SystemError: ...
    returned a result with an exception set`` whose context is the
    KeyboardInterrupt.
    """
    while exc is not None:
        if isinstance(exc, KeyboardInterrupt):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def restore_on_interrupt(method):
    """Decorate ``fit``/``partial_fit``: on Ctrl-C, put back the estimator's
    attributes as they were before the call (no half-fitted estimator whose
    ``check_is_fitted`` passes but whose ``predict`` fails) and raise
    KeyboardInterrupt itself."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        before = dict(self.__dict__)
        try:
            return method(self, *args, **kwargs)
        except BaseException as exc:
            if not _interrupted(exc):
                raise
            self.__dict__.clear()
            self.__dict__.update(before)
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise KeyboardInterrupt from None

    return wrapper
