from __future__ import annotations

from corestore import errors


def test_every_public_error_has_a_code_and_the_root() -> None:
    classes = [getattr(errors, n) for n in errors.__all__]
    assert errors.CorestoreError in classes
    for cls in classes:
        assert issubclass(cls, errors.CorestoreError)
        assert cls.__name__.endswith("Error")
        assert isinstance(cls.code, str)
        assert cls.__module__ == errors.__name__
    assert errors.CorestoreClosedError.code == "CORESTORE_CLOSED"
    assert str(errors.CorestoreClosedError()) == "CORESTORE_CLOSED: Corestore is closed"
    assert errors.PrimaryKeyMismatchError.code == "PRIMARY_KEY_MISMATCH"
