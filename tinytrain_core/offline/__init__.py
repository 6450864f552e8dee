"""Notebook 01, the offline stage: `metaconfig` (MetaConfig and its schedule), `metatrain`
(ProtoNet meta-training), `scratch` (pre-training without ImageNet), `evaluate` (frozen-feature
episodes, the before/after table)."""
