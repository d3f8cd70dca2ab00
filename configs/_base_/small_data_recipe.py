# The small-data recipe (docs/pretraining_health.md, "A small-data recipe"),
# what the CPU and demo configs change in the R50 models, as a variable that
# each config merges into `model` (`model = _base_.small_data_model`):
# ResNet-18 and a neck as wide as its C5; a queue of 64, short against a few
# hundred images, so few negatives are older keys of the query's own image;
# BN in 2 groups with the keys shuffled across them (one process computes
# what 2 GPUs with shuffle BN compute); m = 0.99, since the paper's 0.999
# would leave the key encoder near its random init after 640 iterations.
# Raise queue_len with the data (the sanity hook warns above half of it).
small_data_model = dict(
    queue_len=64,
    split_bn_groups=2,
    momentum=0.99,
    backbone=dict(depth=18),
    neck=dict(in_channels=512, hid_channels=512))
