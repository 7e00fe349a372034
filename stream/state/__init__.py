"""The state stage: the partitions' offsets and checkpoints (:mod:`.checkpoints`) and the
compacted topics they and the reference profiles live on."""
