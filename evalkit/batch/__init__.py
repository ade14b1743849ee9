"""Large batch jobs: streaming, resume, retry of errors, sharding, merging, progress."""
