# The CPU config with bfloat16 mixed precision (CPUAmpOptimWrapper: bf16
# autocast, no loss scaling); what `tools/train.py --amp` selects on a CPU.
_base_ = ['./densecl_resnet18_1xb16-coslr-640iters_folder-cpu.py']
optim_wrapper = dict(type='CPUAmpOptimWrapper', dtype='bfloat16')
