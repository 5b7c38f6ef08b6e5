"""The run-directory contract: where a training run keeps what, and how to read a run back.

Layout of a run directory (train_qtopt and train_rl_cyclegan alike):

  run_spec.json              RunSpec: what the run was (kind, sizes, action mode, allowed CEM
                             modes, how G feeds the policy) and every saved network with its
                             class, constructor arguments and checkpoint key. Written by the
                             training loop (atomic) before its first train step.
  operative_config.gin       the gin config in force: env and CEM settings (GraspingEnv.*,
                             CEMPolicy.*) that evaluation reuses
  train/ckpt/                tf.train.CheckpointManager checkpoints (every network, targets,
                             optimizers, counters)
  train/snapshots/q-<step>   the policy's Q-network alone, kept for checkpoint selection
                             (a CheckpointManager keeping all; its state file lists them)
  train/events.*, eval/events.*, eval/eval_<step>.json
  replay/sim/                on-policy sim episodes

Readers (tools/evaluate.py, tools/export.py, tools/select_checkpoint.py, the final-Q phase's
frozen G, the generator report) all go through ``read_run_spec`` and ``restore_networks``, so
a run's sizes and modes come from the run, never from defaults. Runs written before
run_spec.json existed are read from their operative config and checkpoint
(``infer_run_spec``), which knows both binaries' gin names (``train_eval.*`` and
``train_rl_cyclegan.*``).

``latest_checkpoint`` skips a truncated or unreadable newest checkpoint and falls back to the
newest one that reads completely, naming the bad file.
"""

import dataclasses
import json
import os
import re
import sys
from typing import Dict, Mapping, Optional, Sequence, Tuple

from gin import config_parser as gin_parser
import numpy as np
import tensorflow as tf

from rl_cyclegan import checkpoints
from rl_cyclegan import fileio
from rl_cyclegan import specs
from rl_cyclegan.networks import discriminator as discriminator_lib
from rl_cyclegan.networks import generator as generator_lib
from rl_cyclegan.networks import layers
from rl_cyclegan.networks import q_network as q_network_lib

RUN_SPEC = 'run_spec.json'
OPERATIVE_CONFIG = 'operative_config.gin'
# Where a run's gin config is looked for, in order (older runs kept it under train/).
OPERATIVE_CONFIG_PATHS = (OPERATIVE_CONFIG, os.path.join('train', OPERATIVE_CONFIG))
TRAIN_SUBDIR = 'train'
EVAL_SUBDIR = 'eval'
CHECKPOINT_SUBDIR = os.path.join(TRAIN_SUBDIR, 'ckpt')
# Checkpointing.weights_copy: the newest checkpoint without the optimizers (runner.py)
WEIGHTS_SUBDIR = os.path.join(TRAIN_SUBDIR, 'weights')
SNAPSHOT_SUBDIR = os.path.join(TRAIN_SUBDIR, 'snapshots')
SIM_REPLAY_SUBDIR = os.path.join('replay', 'sim')
REVERB_SUBDIR = os.path.join('replay', 'reverb')  # Reverb checkpoints (train/distributed.py)
ACTORS_SUBDIR = 'actors'  # actor processes' gin config and logs (train/distributed.py)
WORKERS_SUBDIR = 'workers'  # other learner workers' own run directories (multi-worker runs)
SPEC_FORMAT = 1
KINDS = ('qtopt', 'rl_cyclegan')
# The gin name of each binary's train_eval (its bindings in operative_config.gin).
BINDING_PREFIX = {'qtopt': 'train_eval', 'rl_cyclegan': 'train_rl_cyclegan'}
# The shared settings groups of train/runner.py (gin names), for configs written since.
SETTINGS_GROUPS = ('Environment', 'Replay', 'Exploration', 'Evaluation', 'Checkpointing')
NETWORK_CLASSES = {
    'GraspingQNetwork': q_network_lib.GraspingQNetwork,
    'UNetGenerator': generator_lib.UNetGenerator,
    'MultiScaleDiscriminator': discriminator_lib.MultiScaleDiscriminator,
}
NETWORK_LABELS = {'GraspingQNetwork': 'Q-network (GraspingQNetwork)',
                  'UNetGenerator': 'generator (UNetGenerator)',
                  'MultiScaleDiscriminator': 'discriminator (MultiScaleDiscriminator)'}
GENERATOR_INPUTS = ('frames', 'crops')  # G on whole frames (cached) or on each crop


class RunSpecError(ValueError):
  """A run_spec.json that is missing fields or has wrong values (names the file and field)."""


@dataclasses.dataclass(frozen=True)
class NetworkSpec:
  """A saved network: its class and constructor arguments (None: built from gin)."""
  cls: str
  config: Optional[dict] = None

  def build(self, crop_size: Sequence[int]):
    """The network, built (variables created) for ``crop_size`` crops."""
    if self.cls not in NETWORK_CLASSES:
      raise RunSpecError(f'unknown network class {self.cls!r}; known: '
                         f'{", ".join(NETWORK_CLASSES)}')
    kwargs = dict(self.config or {})
    if self.cls == 'GraspingQNetwork':
      kwargs.setdefault('crop_size', tuple(crop_size))
      net = NETWORK_CLASSES[self.cls](**kwargs)
      net.create_variables()
      return net
    net = NETWORK_CLASSES[self.cls](**kwargs)
    net(tf.zeros([1, *crop_size, specs.IMAGE_CHANNELS]), training=False)
    return net


@dataclasses.dataclass(frozen=True)
class RunSpec:
  """What a training run was, as evaluation and export need it."""
  kind: str  # 'qtopt' | 'rl_cyclegan'
  render_size: Tuple[int, int]  # camera (H, W)
  crop_size: Tuple[int, int]  # network input (h, w)
  action_mode: str  # 'auto_descend' | 'full'
  allowed_modes: Optional[Tuple[bool, ...]]  # CEM's allowed modes; None: all
  num_objects: int
  appearance: str  # the training appearance
  networks: Dict[str, NetworkSpec]  # checkpoint key -> network
  policy_q_key: str  # the Q-network of the run's deployable policy
  generator_key: Optional[str] = None  # a frozen G in front of Q on sim-like images
  generator_input: Optional[str] = None  # 'frames' | 'crops' (with generator_key)
  checkpoint_keys: Tuple[str, ...] = ()  # every top-level key of train/ckpt checkpoints
  # Networks kept beside the run instead of in its checkpoint: key -> a checkpoint (prefix or
  # directory) relative to the run directory, e.g. a published final Q's frozen G, committed
  # once beside it (``write_policy_checkpoint``). ``restore_networks`` reads them there.
  network_sources: Dict[str, str] = dataclasses.field(default_factory=dict)
  source: str = RUN_SPEC  # where it was read from (RUN_SPEC, or inferred)

  def network_source(self, key: str) -> Optional[str]:
    """The checkpoint holding network ``key`` outside the run's own checkpoint, or None."""
    relative = self.network_sources.get(key)
    if relative is None:
      return None
    return os.path.normpath(os.path.join(os.path.dirname(self.source), relative))

  def to_json(self) -> dict:
    out = dataclasses.asdict(self)
    out['networks'] = {k: {'class': n.cls, 'config': n.config}
                       for k, n in self.networks.items()}
    del out['source']
    return dict(format=SPEC_FORMAT, **out)

  @classmethod
  def from_json(cls, data: Mapping, path: str) -> 'RunSpec':
    def field(name, kind, optional=False):
      if name not in data:
        if optional:
          return None
        raise RunSpecError(f'{path}: field {name!r} is missing')
      value = data[name]
      if value is None and optional:
        return None
      if not isinstance(value, kind):
        raise RunSpecError(f'{path}: field {name!r} is {value!r}, expected '
                           f'{getattr(kind, "__name__", kind)}')
      return value

    if data.get('format') != SPEC_FORMAT:
      raise RunSpecError(f'{path}: format {data.get("format")!r}, this code reads format '
                         f'{SPEC_FORMAT}')
    kind = field('kind', str)
    if kind not in KINDS:
      raise RunSpecError(f'{path}: kind {kind!r}, expected one of {KINDS}')
    sizes = {}
    for name in ('render_size', 'crop_size'):
      value = field(name, list)
      if len(value) != 2 or not all(isinstance(v, int) and v > 0 for v in value):
        raise RunSpecError(f'{path}: {name} {value!r}, expected [height, width] > 0')
      sizes[name] = tuple(value)
    networks = {}
    for key, net in field('networks', dict).items():
      if not isinstance(net, dict) or not isinstance(net.get('class'), str):
        raise RunSpecError(f'{path}: networks[{key!r}] {net!r}, expected {{"class": ..., '
                           '"config": {...} or null}')
      networks[key] = NetworkSpec(net['class'], net.get('config'))
    modes = field('allowed_modes', list, optional=True)
    generator_input = field('generator_input', str, optional=True)
    sources = field('network_sources', dict, optional=True) or {}
    for key, relative in sources.items():
      if key not in networks or not isinstance(relative, str) or os.path.isabs(relative):
        raise RunSpecError(f'{path}: network_sources[{key!r}] {relative!r}, expected a '
                           'checkpoint path relative to the run directory for one of the '
                           f'networks ({", ".join(networks)})')
    if generator_input is not None and generator_input not in GENERATOR_INPUTS:
      raise RunSpecError(f'{path}: generator_input {generator_input!r}, expected one of '
                         f'{GENERATOR_INPUTS}')
    spec = cls(kind=kind, action_mode=field('action_mode', str),
               allowed_modes=tuple(bool(m) for m in modes) if modes is not None else None,
               num_objects=field('num_objects', int), appearance=field('appearance', str),
               networks=networks, policy_q_key=field('policy_q_key', str),
               generator_key=field('generator_key', str, optional=True),
               generator_input=generator_input,
               checkpoint_keys=tuple(field('checkpoint_keys', list)),
               network_sources=dict(sources), source=path, **sizes)
    for key in filter(None, (spec.policy_q_key, spec.generator_key)):
      if key not in networks:
        raise RunSpecError(f'{path}: {key!r} is not among the networks '
                           f'({", ".join(networks)})')
    return spec


# ----------------------------------------------------------------------------- paths

def checkpoint_dir(root_dir: str) -> str:
  return os.path.join(root_dir, CHECKPOINT_SUBDIR)


def weights_checkpoint_dir(root_dir: str) -> str:
  """Where a run keeps its weights-only checkpoint (``Checkpointing.weights_copy``)."""
  return os.path.join(root_dir, WEIGHTS_SUBDIR)


def worker_dir(root_dir: str, task_id: int) -> str:
  """The run directory of learner worker ``task_id`` > 0 of a multi-worker run in root_dir
  (the chief's, task 0, is root_dir itself): <root_dir>/workers/worker-<task_id>."""
  if task_id < 1:
    raise ValueError(f'worker_dir: task_id={task_id}; the chief (0) runs in root_dir itself')
  return os.path.join(root_dir, WORKERS_SUBDIR, f'worker-{task_id}')


def find_operative_config(root_dir: str) -> Optional[str]:
  """The run's saved gin config (see ``OPERATIVE_CONFIG_PATHS``), or None."""
  for relative in OPERATIVE_CONFIG_PATHS:
    path = os.path.join(root_dir, relative)
    if os.path.isfile(path):
      return path
  return None


SNAPSHOT_NAME = 'q'  # snapshot prefixes are train/snapshots/q-<step>


def snapshot_manager(root_dir: str, q_network) -> tf.train.CheckpointManager:
  """The ``tf.train.CheckpointManager`` of a run's Q-network snapshots: every one is kept, and
  its ``checkpoint`` state file lists them (written only after a snapshot is complete).

  The checkpoint is ``tf.train.Checkpoint(q_network=...)``, the key that policy loading
  restores. Snapshots written before the manager kept them (no state file; e.g. a Table 1
  final Q resumed across this change) are first recorded in a state file, with their file
  times, so the manager keeps listing them.
  """
  directory = os.path.join(root_dir, SNAPSHOT_SUBDIR)
  if tf.train.get_checkpoint_state(directory) is None:
    legacy = _legacy_snapshots(directory)
    if legacy:
      times = [os.path.getmtime(prefix + '.index') for _, prefix in legacy]
      tf.compat.v1.train.update_checkpoint_state(
          directory, legacy[-1][1], all_model_checkpoint_paths=[p for _, p in legacy],
          all_model_checkpoint_timestamps=times, last_preserved_timestamp=min(times) - 1)
  return tf.train.CheckpointManager(tf.train.Checkpoint(q_network=q_network), directory,
                                    max_to_keep=None, checkpoint_name=SNAPSHOT_NAME)


def list_snapshots(root_dir: str):
  """[(step, prefix)] of the complete Q-network snapshots under ``root_dir``, by step: those
  that the snapshot manager's state file lists (see ``snapshot_manager``). A run written
  before that file existed is listed from its complete ``q-<step>`` files (TensorFlow writes a
  checkpoint's index file last, so an interrupted write has none).
  """
  directory = os.path.join(root_dir, SNAPSHOT_SUBDIR)
  state = tf.train.get_checkpoint_state(directory)
  if state is None:
    return _legacy_snapshots(directory)
  out = []
  for prefix in state.all_model_checkpoint_paths:
    name, _, step = os.path.basename(prefix).rpartition('-')
    if name != SNAPSHOT_NAME or not step.isdigit():
      raise ValueError(f'{os.path.join(directory, "checkpoint")} lists {prefix!r}, not a '
                       f'snapshot named {SNAPSHOT_NAME}-<step>')
    if tf.io.gfile.exists(prefix + '.index'):  # e.g. deleted by hand since
      out.append((int(step), prefix))
  return sorted(out)


def _legacy_snapshots(directory: str):
  """[(step, prefix)] of the ``q-<step>`` snapshots with an index file in ``directory``."""
  if not os.path.isdir(directory):
    return []
  out = []
  for name in os.listdir(directory):
    match = re.fullmatch(re.escape(SNAPSHOT_NAME) + r'-(\d+)\.index', name)
    if match:
      out.append((int(match.group(1)), os.path.join(directory, name[:-len('.index')])))
  return sorted(out)


def _readable(prefix: str) -> Optional[str]:
  """None if every tensor of checkpoint ``prefix`` reads back, else the error text."""
  try:
    reader = tf.train.load_checkpoint(prefix)
    for name in reader.get_variable_to_shape_map():
      reader.get_tensor(name)
  except (tf.errors.OpError, ValueError, IndexError, OSError) as e:
    return f'{type(e).__name__}: {str(e)[:300]}'
  return None


def latest_checkpoint(directory: str, log=None) -> Optional[str]:
  """The newest checkpoint under ``directory`` that reads completely, or None if there is none.

  A truncated or otherwise unreadable newer checkpoint is skipped with a message naming it
  (on ``log``, default stderr); if none reads, ValueError names them all.
  """
  state = tf.train.get_checkpoint_state(directory)
  if state is None:
    return None
  candidates = list(reversed(list(state.all_model_checkpoint_paths) or
                             [state.model_checkpoint_path]))
  bad = []
  for prefix in candidates:
    if not tf.io.gfile.exists(prefix + '.index'):  # e.g. a directory moved since
      prefix = os.path.join(directory, os.path.basename(prefix))
    error = _readable(prefix)
    if error is None:
      if bad:
        message = (f'skipped unreadable checkpoint(s) {", ".join(p for p, _ in bad)} '
                   f'({bad[0][1]}); using {prefix}')
        (log or (lambda m: print(m, file=sys.stderr, flush=True)))(message)
      return prefix
    bad.append((prefix, error))
  raise ValueError(f'no readable checkpoint under {directory!r}: ' +
                   '; '.join(f'{p}: {e}' for p, e in bad))


# ----------------------------------------------------------------------------- run_spec.json

def write_run_spec(root_dir: str, spec: RunSpec) -> str:
  path = os.path.join(root_dir, RUN_SPEC)
  fileio.write_json_atomic(path, spec.to_json())
  return path


def network_specs(networks: Mapping[str, tf.Module]) -> Dict[str, NetworkSpec]:
  """{key: NetworkSpec} of the networks among checkpoint items (others are skipped)."""
  out = {}
  for key, net in networks.items():
    config = layers.constructor_config(net)
    if config is not None and type(net).__name__ in NETWORK_CLASSES:
      out[key] = NetworkSpec(type(net).__name__, config)
  return out


class Unresolved:
  """A reference or macro in a gin file (kept as text; not needed to read a run)."""

  def __init__(self, name):
    self.name = name


class _Delegate(gin_parser.ParserDelegate):

  def configurable_reference(self, scoped_configurable_name, evaluate):
    return Unresolved(scoped_configurable_name)

  def macro(self, macro_name):
    return Unresolved(macro_name)


def parse_gin_bindings(path: str, search_paths: Sequence[str] = (),
                       _seen: Tuple[str, ...] = ()) -> Dict[str, object]:
  """{'Selector.param': value} of the unscoped bindings in gin file ``path``, in order, its
  includes followed (relative to the file, then ``search_paths``). Gin's own parser; nothing
  is registered or imported, references and macros stay unresolved (``Unresolved``).

  Raises ValueError naming the file and line of a syntax error, FileNotFoundError naming an
  include that is not found.
  """
  if path in _seen:
    raise ValueError(f'gin file {path!r} includes itself (via {" -> ".join(_seen)})')
  out = {}
  with open(path) as f:
    parser = gin_parser.ConfigParser(f, _Delegate())
    try:
      for statement in parser:
        if isinstance(statement, gin_parser.BindingStatement) and not statement.scope:
          out[f'{statement.selector}.{statement.arg_name}'] = statement.value
        elif isinstance(statement, gin_parser.IncludeStatement):
          candidates = [os.path.join(os.path.dirname(path), statement.filename)] + [
              os.path.join(d, statement.filename) for d in search_paths]
          found = next((c for c in candidates if os.path.isfile(c)), None)
          if found is None:
            raise FileNotFoundError(f'gin file {path!r} line {statement.location.line_num} '
                                    f'includes {statement.filename!r}, not found in '
                                    f'{", ".join(os.path.dirname(c) for c in candidates)}')
          out.update(parse_gin_bindings(found, search_paths, _seen + (path,)))
    except SyntaxError as e:
      raise ValueError(f'gin file {path!r} line {e.lineno}: {e.msg}: {e.text!r}') from e
  return out


def infer_run_spec(root_dir: str, checkpoint_path: Optional[str] = None,
                   config: Optional[str] = None) -> RunSpec:
  """The RunSpec of a run written before run_spec.json: from its gin config (``config``, else
  its operative config) and checkpoint. Its networks are built from gin
  (``NetworkSpec.config`` None): parse the run's config first.
  """
  config = config or find_operative_config(root_dir)
  if config is None:
    tried = ', '.join(os.path.join(root_dir, p) for p in (RUN_SPEC,) + OPERATIVE_CONFIG_PATHS)
    raise FileNotFoundError(f'run {root_dir!r} has no {RUN_SPEC} and no gin config: tried '
                            f'{tried}')
  bindings = parse_gin_bindings(config)
  prefix = checkpoint_path or latest_checkpoint(checkpoint_dir(root_dir))
  keys = sorted({n.split('/')[0] for n, _ in tf.train.list_variables(prefix)}) if prefix else []
  kind = 'rl_cyclegan' if ('Q_real' in keys or any(
      k.startswith('train_rl_cyclegan.') for k in bindings)) else 'qtopt'
  p = BINDING_PREFIX[kind]

  def get(name, default):  # the binary's own name, or a shared group's (train/runner.py)
    for prefix in (p,) + SETTINGS_GROUPS:
      if f'{prefix}.{name}' in bindings:
        return bindings[f'{prefix}.{name}']
    return default

  crop = get('crop_size', bindings.get('GraspingQNetwork.crop_size', specs.DEFAULT_CROP_SIZE))
  action_mode = get('action_mode', 'auto_descend')
  networks = {}
  if kind == 'qtopt':
    networks['q_network'] = NetworkSpec('GraspingQNetwork')
    generator_key = get('generator_checkpoint_key', 'G_sim2real') if get(
        'generator_checkpoint', None) else None
    if generator_key:
      networks[generator_key] = NetworkSpec('UNetGenerator')
    # Runs made before frame translation have no translate_frames binding: G on the crops.
    generator_input = (('frames' if get('translate_frames', False) else 'crops')
                       if generator_key else None)
    policy_q_key = 'q_network'
  else:
    for key in ('Q_sim', 'Q_real'):
      networks[key] = NetworkSpec('GraspingQNetwork')
    for key in ('G_sim2real', 'F_real2sim'):
      if not keys or key in keys:
        networks[key] = NetworkSpec('UNetGenerator')
    generator_key, generator_input, policy_q_key = None, None, 'Q_real'
  return RunSpec(
      kind=kind, render_size=tuple(get('render_size', specs.DEFAULT_RENDER_SIZE)),
      crop_size=tuple(crop), action_mode=action_mode,
      allowed_modes=specs.allowed_modes_for(action_mode,
                                            bool(get('auto_descend_terminate', False))),
      num_objects=int(get('num_objects', bindings.get('GraspingEnv.num_objects', 5))),
      appearance=get('appearance', 'sim'), networks=networks, policy_q_key=policy_q_key,
      generator_key=generator_key, generator_input=generator_input,
      checkpoint_keys=tuple(keys), source=f'{config} (inferred: the run has no {RUN_SPEC})')


def read_run_spec(root_dir: str, checkpoint_path: Optional[str] = None,
                  config: Optional[str] = None) -> RunSpec:
  """The run's RunSpec: its run_spec.json, else inferred from an older run's files
  (``infer_run_spec``; ``config`` overrides the gin config it reads).

  Raises FileNotFoundError naming what was tried, RunSpecError naming the file and field.
  """
  path = os.path.join(root_dir, RUN_SPEC)
  if os.path.isfile(path):
    try:
      with open(path) as f:
        data = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
      raise RunSpecError(f'{path}: not readable JSON: {e}') from e
    if not isinstance(data, dict):
      raise RunSpecError(f'{path}: expected a JSON object, got {type(data).__name__}')
    return RunSpec.from_json(data, path)
  if not os.path.isdir(root_dir):
    raise FileNotFoundError(f'run directory {root_dir!r} does not exist')
  return infer_run_spec(root_dir, checkpoint_path, config)


def with_network(spec: RunSpec, key: str, cls: str) -> RunSpec:
  """``spec`` plus a network ``key`` of class ``cls`` built from gin."""
  return dataclasses.replace(spec, networks=dict(spec.networks, **{key: NetworkSpec(cls)}))


# ----------------------------------------------------------------------------- restoring

def restore_networks(spec: RunSpec, keys: Sequence[str],
                     checkpoint_path: str) -> Dict[str, object]:
  """{key: network} built per ``spec`` and restored from ``checkpoint_path`` (checked).

  A network that ``checkpoint_path`` does not hold is read from ``spec.network_source(key)``
  when the spec names one (a published final Q's frozen G, committed beside it). Networks
  whose spec has no constructor arguments (older runs) are built from the gin config in force
  (parse the run's operative config first). Every network must match its checkpoint exactly
  (``checkpoints.check_matches``: shapes and variable lists both ways).
  """
  if not checkpoints.resolve(checkpoint_path):
    raise FileNotFoundError(f'no checkpoint at {checkpoint_path!r} (expected a '
                            'tf.train.Checkpoint prefix: its .index file is missing)')
  checkpoint_path = checkpoints.resolve(checkpoint_path)
  stored = {n.split('/')[0] for n, _ in tf.train.list_variables(checkpoint_path)}
  by_source = {}
  for key in keys:
    if key not in spec.networks:
      raise ValueError(f'run spec {spec.source} has no network {key!r}; its networks: '
                       f'{", ".join(spec.networks)}')
    source = checkpoint_path
    if key not in stored and spec.network_source(key):
      source = checkpoints.resolve(spec.network_source(key))
      if not source:
        raise FileNotFoundError(
            f'run spec {spec.source} keeps network {key!r} beside the run, at '
            f'{spec.network_source(key)!r}, but there is no checkpoint there')
    by_source.setdefault(source, []).append(key)
  nets = {}
  for source, source_keys in by_source.items():
    built = {key: spec.networks[key].build(spec.crop_size) for key in source_keys}
    for key, net in built.items():
      checkpoints.check_matches(net, key, source, NETWORK_LABELS[spec.networks[key].cls],
                                config=spec.source)
    checkpoints.restore(built, source, f'run networks {", ".join(source_keys)} '
                        f'(spec {spec.source})')
    nets.update(built)
  return {key: nets[key] for key in keys}


def restore_network(source: str, key: str, crop_size: Sequence[int] = specs.DEFAULT_CROP_SIZE,
                    cls: str = 'UNetGenerator'):
  """One network from any run or checkpoint: ``source`` is a run directory (its spec builds
  the network), or a checkpoint prefix / directory (built as ``cls`` from gin, at
  ``crop_size``). The network is restored exactly, or an error names the file and keys."""
  if os.path.isdir(source) and (os.path.isfile(os.path.join(source, RUN_SPEC)) or
                                find_operative_config(source)):
    spec = read_run_spec(source)
    prefix = latest_checkpoint(checkpoint_dir(source))
    if prefix is None:
      raise FileNotFoundError(f'run {source!r} has no checkpoint under {CHECKPOINT_SUBDIR}')
    return restore_networks(spec, [key], prefix)[key]
  net = NetworkSpec(cls).build(crop_size)
  checkpoints.restore({key: net}, source, NETWORK_LABELS[cls], exact=True,
                      config=f'gin, crop size {tuple(crop_size)}')
  return net


# ----------------------------------------------------------------------------- publishing

# The scalar counters a published checkpoint keeps beside its networks (the step it was taken).
PUBLISHED_COUNTERS = ('train_step',)


def write_policy_checkpoint(root_dir: str, dst_root: str,
                            network_sources: Optional[Mapping[str, str]] = None
                            ) -> Optional[str]:
  """The run's newest checkpoint, cut to what a reader evaluates and exports, in ``dst_root``.

  Keeps the policy Q (``spec.policy_q_key``), the run's frozen G (``spec.generator_key``) when
  it has one, and the train step; drops the target networks, the optimizer's moments and the
  other counters, which only resuming the training needs (a final Q of the 0.75 Table 1:
  2.07 MB -> 1.04 MB). Written under the same name in ``dst_root``'s train/ckpt, which then
  holds only it, beside a ``run_spec.json`` whose ``checkpoint_keys`` list what it kept.
  ``network_sources`` {key: checkpoint}: networks already published elsewhere (a frozen G
  committed beside the final Q: 1.04 MB -> 0.26 MB) are left out of the checkpoint and named,
  relative to ``dst_root``, in the run_spec.json's ``network_sources``, where
  ``restore_networks`` reads them; each must hold exactly the run's values (ValueError
  naming both otherwise).
  ``dst_root`` must be another directory (the source stays whole whatever happens here). The
  files are written under a temporary name and renamed into place after the old index file is
  removed, and the index naming the checkpoint comes last, so an interrupted write never looks
  complete; re-running writes it again. On a checkpoint of the same name already cut, it only
  rewrites the run_spec.json.

  Returns the written (or already cut) checkpoint prefix, or None when the run has none.
  """
  if os.path.realpath(root_dir) == os.path.realpath(dst_root):
    raise ValueError(f'write_policy_checkpoint: the destination {dst_root!r} is the run itself; '
                     'cut a copy of it instead, so that the source stays whole')
  spec = read_run_spec(root_dir)
  prefix = latest_checkpoint(checkpoint_dir(root_dir))
  if prefix is None:
    return None
  keys = [spec.policy_q_key] + ([spec.generator_key] if spec.generator_key in spec.networks
                                and spec.generator_key != spec.policy_q_key else [])
  if network_sources and not os.path.isfile(os.path.join(root_dir, RUN_SPEC)):
    raise ValueError(f'write_policy_checkpoint: run {root_dir!r} has no {RUN_SPEC} to name '
                     f'where {", ".join(network_sources)} would be kept; publish it whole')
  for key, source in (network_sources or {}).items():
    _check_same_network(spec, key, prefix, source)
  sources = {key: spec.network_source(key) for key in spec.network_sources}
  sources.update(network_sources or {})
  keys = [k for k in keys if k not in sources]
  spec = dataclasses.replace(spec, network_sources={
      key: os.path.relpath(source, dst_root) for key, source in sources.items()})
  stored = {n.split('/')[0] for n, _ in tf.train.list_variables(prefix)}
  counters = [c for c in PUBLISHED_COUNTERS if c in stored]
  kept = tuple(sorted(keys + counters + ['save_counter']))
  dst_dir, name = checkpoint_dir(dst_root), os.path.basename(prefix)
  dst_prefix = os.path.join(dst_dir, name)
  index = os.path.join(dst_dir, 'checkpoint')
  state = tf.train.get_checkpoint_state(dst_dir) if os.path.isfile(index) else None
  if (state is not None and os.path.basename(state.model_checkpoint_path) == name and
      os.path.isfile(dst_prefix + '.index') and
      {n.split('/')[0] for n, _ in tf.train.list_variables(dst_prefix)} - {
          '_CHECKPOINTABLE_OBJECT_GRAPH'} == set(kept)):
    _write_spec_keys(root_dir, dst_root, spec, kept)
    return dst_prefix
  objects = restore_networks(spec, keys, prefix)
  reader = tf.train.load_checkpoint(prefix)
  for c in counters:
    objects[c] = tf.Variable(reader.get_tensor(f'{c}/.ATTRIBUTES/VARIABLE_VALUE'))
  os.makedirs(dst_dir, exist_ok=True)
  partial = os.path.join(dst_dir, f'.partial-{name}')
  checkpoint = tf.train.Checkpoint(**objects)
  # Every restore through tf.train.Checkpoint matches its own save counter too.
  checkpoint.save_counter.assign(reader.get_tensor('save_counter/.ATTRIBUTES/VARIABLE_VALUE')
                                 if 'save_counter' in stored else 0)
  checkpoint.write(partial)
  if os.path.isfile(index):
    os.remove(index)  # from here until the new index, the directory holds no checkpoint
  for f in os.listdir(dst_dir):  # every other checkpoint's files: it holds only this one
    if not f.startswith('.partial-') and (f.endswith('.index') or '.data-' in f):
      os.remove(os.path.join(dst_dir, f))
  for f in os.listdir(dst_dir):
    if f.startswith(f'.partial-{name}.'):
      os.replace(os.path.join(dst_dir, f), os.path.join(dst_dir, f[len('.partial-'):]))
  _write_spec_keys(root_dir, dst_root, spec, kept)
  fileio.write_text_atomic(index, f'model_checkpoint_path: "{name}"\n'
                                  f'all_model_checkpoint_paths: "{name}"\n')
  return dst_prefix


def _check_same_network(spec: RunSpec, key: str, prefix: str, source: str):
  """Raises ValueError unless checkpoint ``source`` holds network ``key`` with exactly the
  values it has in ``prefix`` (both built per ``spec``)."""
  if key not in spec.networks:
    raise ValueError(f'network_sources names {key!r}, which run spec {spec.source} does not '
                     f'list ({", ".join(spec.networks)})')
  ours = restore_networks(spec, [key], prefix)[key]
  theirs = restore_networks(spec, [key], source)[key]
  for a, b in zip(ours.variables, theirs.variables):
    if a.name != b.name or not np.array_equal(a.numpy(), b.numpy()):
      raise ValueError(f'network_sources: {key!r} at {source!r} is not the one in {prefix!r} '
                       f'(variable {a.name} differs); publish the G this run was trained with')


def _write_spec_keys(root_dir, dst_root, spec, kept):
  """``dst_root``'s run_spec.json: the run's, with ``checkpoint_keys`` = ``kept``."""
  if not os.path.isfile(os.path.join(root_dir, RUN_SPEC)):  # an older run's inferred spec
    return
  out = spec.to_json()
  out['checkpoint_keys'] = list(kept)
  fileio.write_json_atomic(os.path.join(dst_root, RUN_SPEC), out)
