"""The data room: ten embedded image domains, Meta-Dataset episodes, loaders, a CI fixture.

Contract (other modules code against exactly these names):
  data_root()                  $TINYTRAIN_DATA_DIR, else <project root>/data
  list_domains(profile)        built domains, base first (smoke: fixture_base, fixture_a, fixture_b;
                               default/paper: icons + the built targets + bring-your-own domains)
  base_domain(profile), target_domains(profile)
  load_domain(name, profile)   -> Domain(.name .role .stands_in_for .manifest .classes(split)
                               .images(class_name)); unknown -> ValueError, unbuilt -> error
                               naming `make data` / `make fixture`
  EpisodeConfig, Episode, sample_episodes(domain, split, n, cfg, seed, profile)
                               pure function of (domain, split, index, cfg, seed), cached in
                               data/episodes/<profile>/
  episode_tensors(ep, channels_last=False)
                               -> xs, ys, xq, yq: float32 Nx3x128x128, (pixel-128)/128; int64 labels
  read_rgb(path), load_image(path), load_batch(paths)   one file -> HxWx3 uint8 / normalised tensors
  augment_batch(x, kind, generator)   kind 'meta' (batched tensor ops) | 'finetune' | 'none';
                               deterministic given generator
  finetune_draws(n, h, w, gen), apply_finetune(x, draws)   'finetune' in two: draws, then ops
  base_loader(profile, ...), SplitDataset, EpisodeDataset   torch.utils.data
  manifest_hash(profile)       12-hex hash over a profile's manifests
  import_folder(src, name)     bring your own domain; build_fixture() for tests
  convert_meta_dataset(records_root, source), convert_meta_dataset_all(records_root),
  convert_miniimagenet(src)    the paper's real data as domains (convert.py); once converted,
                               the paper profile lists miniimagenet + the md_* targets
"""
from .byo import import_folder
from .convert import convert_meta_dataset, convert_meta_dataset_all
from .miniimagenet import convert_miniimagenet
from .domains import (BUILTIN, FIXTURE, Domain, base_domain, data_root, list_domains, load_domain,
                      manifest_hash, summary_row, target_domains)
from .episodes import Episode, EpisodeConfig, sample_episode, sample_episodes
from .fixture import build_fixture, fixture_ready
from .loading import (EpisodeDataset, SplitDataset, apply_finetune, augment_batch, base_loader, episode_tensors,
                      finetune_draws, load_batch, load_image, read_rgb)
from .profiles import episode_config, profile_settings

__all__ = [
    "BUILTIN", "FIXTURE", "Domain", "Episode", "EpisodeConfig", "EpisodeDataset", "SplitDataset",
    "convert_meta_dataset", "convert_meta_dataset_all", "convert_miniimagenet",
    "apply_finetune", "augment_batch", "base_domain", "base_loader", "build_fixture", "data_root", "episode_config",
    "episode_tensors", "finetune_draws", "fixture_ready", "import_folder", "list_domains", "load_batch",
    "load_domain", "load_image", "manifest_hash", "profile_settings", "read_rgb", "sample_episode",
    "sample_episodes", "summary_row", "target_domains",
]
