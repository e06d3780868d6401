"""The built-in wanderer: migration history in SQL (:mod:`~core.wanderer.sql`) and the runner
that applies and rolls back migrations while recording them (:mod:`~core.wanderer.runner`)."""
