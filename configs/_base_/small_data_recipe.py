# The small-data recipe (docs/pretraining_health.md, "A small-data recipe"),
# what the CPU and demo configs change in the R50 models, as a variable that
# each config merges into `model` (`model = _base_.small_data_model`):
# ResNet-18 and a neck as wide as its C5, m = 0.99 (the paper's 0.999 would
# leave the key encoder near its random init after 640 iterations), and two
# values that size themselves when the run starts (docs/auto_values.md;
# an explicit number always wins):
# - queue_len='auto': the largest power of two <= n / 4 for n images (64 on
#   the demo's 405: few negatives are older keys of the query's own
#   image), raised to the total batch while <= n / 2, at most 65536;
# - split_bn_groups='auto': 2 in one process (BN in 2 groups with the keys
#   shuffled across them: what 2 GPUs with shuffle BN compute), 1 (off)
#   under DDP, where shuffle BN works.
small_data_model = dict(
    queue_len='auto',
    split_bn_groups='auto',
    momentum=0.99,
    backbone=dict(depth=18),
    neck=dict(in_channels=512, hid_channels=512))
