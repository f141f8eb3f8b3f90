"""The backends that run a study's trials: ``optuna`` (this process or N local workers) and
``ray`` (Ray Tune with OptunaSearch); both write into the same Optuna storage."""

__all__: list[str] = []
