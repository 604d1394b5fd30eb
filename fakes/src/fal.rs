//! Fake of fal's queue API (see `shared/reference/fal-pika.md`). Not written yet.
