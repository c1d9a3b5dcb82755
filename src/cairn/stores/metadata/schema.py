"""The tables of the metadata store, as SQLAlchemy Core objects.

Migrations in ``migrations/versions`` create and evolve these tables; a test checks that
applying every migration yields exactly this schema. Runs carry an integer surrogate key
(``pk``) that the high-volume tables reference: it keeps metric rows and their indexes small.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
RunKey = BigInteger().with_variant(Integer(), "sqlite")

experiments = Table(
    "experiments",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(250), nullable=False, unique=True),
    Column("lifecycle", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    # The project whose members may see and change it (see cairn.core.access).
    Column("project", String(63), nullable=False, server_default="default"),
    Index("ix_experiments_project", "project"),
)

runs = Table(
    "runs",
    metadata,
    Column("pk", RunKey, primary_key=True, autoincrement=True),
    Column("id", String(32), nullable=False, unique=True),
    Column("experiment_id", String(32), ForeignKey("experiments.id"), nullable=False),
    Column("name", String(250), nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger, nullable=True),
    Column("user_name", String(250), nullable=False),
    Column("parent_id", String(32), nullable=True),
    Column("git_commit", String(64), nullable=True),
    Column("source", Text, nullable=True),
    Column("lifecycle", String(16), nullable=False),
    # Copies of the run's params, tags and latest metrics as JSON, rewritten with them in
    # one transaction, so that a search page reads one row per run (see summary.py).
    Column("params_json", Text, nullable=False, server_default="{}"),
    Column("tags_json", Text, nullable=False, server_default="{}"),
    Column("metrics_json", Text, nullable=False, server_default="{}"),
    Index("ix_runs_experiment_start", "experiment_id", "lifecycle", "start_time"),
    Index("ix_runs_parent", "parent_id"),
)

params = Table(
    "params",
    metadata,
    Column("run_pk", RunKey, ForeignKey("runs.pk"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    Index("ix_params_key_value", "key", "value"),
)

tags = Table(
    "tags",
    metadata,
    Column("run_pk", RunKey, ForeignKey("runs.pk"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

# Every point of every metric, stored as one chunk per (run, key, ingested batch): the
# steps, timestamps and values are packed little-endian arrays (int64, int64, float64).
# A million-point batch is then a handful of rows instead of a million, and NaN and ±inf
# survive exactly. Search never reads chunks; it uses ``latest_metrics``.
metric_chunks = Table(
    "metric_chunks",
    metadata,
    Column("id", RunKey, primary_key=True, autoincrement=True),
    Column("run_pk", RunKey, ForeignKey("runs.pk"), nullable=False),
    Column("key", String(250), nullable=False),
    Column("count", Integer, nullable=False),
    Column("first_step", BigInteger, nullable=False),
    Column("last_step", BigInteger, nullable=False),
    Column("steps", LargeBinary, nullable=False),
    Column("timestamps", LargeBinary, nullable=False),
    Column("values", LargeBinary, nullable=False),
    Index("ix_metric_chunks_run_key", "run_pk", "key"),
)

# The latest point per (run, key), kept by upsert at ingest: search filters and orders on
# it. NULL stores NaN: SQLite has no NaN, and PostgreSQL's NaN sorts above every number,
# so NULL gives both backends IEEE comparison semantics in filters.
latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_pk", RunKey, ForeignKey("runs.pk"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("value", Double, nullable=True),
    Index("ix_latest_metrics_key_value", "key", "value"),
)

# Ids of ingested batches, so that a client retrying a batch it got no answer for is safe.
ingest_batches = Table(
    "ingest_batches",
    metadata,
    Column("batch_id", String(64), primary_key=True),
    Column("run_pk", RunKey, ForeignKey("runs.pk"), nullable=False),
)

run_artifacts = Table(
    "run_artifacts",
    metadata,
    Column("run_pk", RunKey, ForeignKey("runs.pk"), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("digest", String(80), nullable=False),
    Column("size", BigInteger, nullable=False),
    # Who may read or record an object is looked up by its digest (see objects.py).
    Index("ix_run_artifacts_digest", "digest"),
)

# Pipeline runs, step runs and the step cache, kept from the runs' system tags in the
# transaction that writes them (see pipelines.py). Values copied from tags are Text: a tag
# may be longer than any name. A cache entry is a finished, not deleted step run with an
# output: the newest for a key is the first row of an index.
pipeline_runs = Table(
    "pipeline_runs",
    metadata,
    Column("run_pk", RunKey, ForeignKey("runs.pk"), primary_key=True),
    Column("run_id", String(32), nullable=False, unique=True),
    Column("experiment_id", String(32), nullable=False),
    Column("pipeline", Text, nullable=False),
    Column("parent_run_id", String(32), nullable=True),  # a sweep's
    Column("start_time", BigInteger, nullable=False),
    Index("ix_pipeline_runs_experiment", "experiment_id", "start_time"),
)

step_runs = Table(
    "step_runs",
    metadata,
    Column("run_pk", RunKey, ForeignKey("runs.pk"), primary_key=True),
    Column("run_id", String(32), nullable=False, unique=True),
    Column("pipeline_run_id", String(32), nullable=True),
    Column("experiment_id", String(32), nullable=False),
    Column("step", Text, nullable=False),
    Column("state", String(16), nullable=False),  # running, ran, cached, failed, killed
    Column("cache_key", Text, nullable=True),
    Column("output_digest", Text, nullable=True),
    Index("ix_step_runs_pipeline_run", "pipeline_run_id"),
)

cache_entries = Table(
    "cache_entries",
    metadata,
    Column("run_pk", RunKey, ForeignKey("runs.pk"), primary_key=True),
    Column("experiment_id", String(32), nullable=False),
    Column("cache_key", String(80), nullable=False),
    Column("user_name", String(250), nullable=False),
    Column("output_digest", Text, nullable=False),
    Column("start_time", BigInteger, nullable=False),  # its run's
    # The newest entry for a key (its run started last; of those, recorded last), and the
    # newest of one account's, each the first row of an index.
    Index("ix_cache_entries_key", "experiment_id", "cache_key", "start_time", "run_pk"),
    Index(
        "ix_cache_entries_key_user",
        "experiment_id",
        "cache_key",
        "user_name",
        "start_time",
        "run_pk",
    ),
)

# The audit trail: one event per state change, written in the change's own transaction and
# chained by hash (see cairn.core.audit). Triggers make both tables append-only.
audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("ts", BigInteger, nullable=False),
    Column("actor", String(250), nullable=False),
    Column("action", String(64), nullable=False),
    Column("object_type", String(32), nullable=False),
    Column("object_id", String(250), nullable=False),
    Column("object_digest", String(80), nullable=True),
    Column("request_id", String(64), nullable=True),
    Column("payload", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_events_actor", "actor"),
    Index("ix_audit_events_object", "object_type", "object_id"),
    Index("ix_audit_events_ts", "ts"),
)

# Signed heads of the chain; each is also exported outside the database.
audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", String(64), nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("key_id", String(16), nullable=False),
    Column("signature", String(128), nullable=False),
    Column("installation", String(32), nullable=True),  # None: signed before ids existed
)

# Identity: projects, accounts (people and services), their API tokens and roles.
projects = Table(
    "projects",
    metadata,
    Column("name", String(63), primary_key=True),
    Column("created_at", BigInteger, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("name", String(63), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("is_admin", Boolean, nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

# Only a digest of each token's secret is stored (see cairn.core.identity).
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("user_name", String(63), ForeignKey("users.name"), nullable=False),
    Column("name", String(250), nullable=False),
    Column("secret_digest", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
    Index("ix_api_tokens_user", "user_name"),
)

project_members = Table(
    "project_members",
    metadata,
    Column("project", String(63), ForeignKey("projects.name"), primary_key=True),
    Column("user_name", String(63), ForeignKey("users.name"), primary_key=True),
    Column("role", String(16), nullable=False),
)

# Data versioning: datasets, their versions (named by their manifest's digest), and the
# generic lineage graph: (kind, id) -relation-> (kind, id), one walk for any question.
datasets = Table(
    "datasets",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("project", String(63), ForeignKey("projects.name"), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

data_versions = Table(
    "data_versions",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("dataset", String(128), ForeignKey("datasets.name"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("digest", String(80), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("path", Text, nullable=False),
    Column("files", BigInteger, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("message", Text, nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("profile", String(80), nullable=False, server_default=""),
    UniqueConstraint("dataset", "version", name="uq_data_versions_dataset_version"),
    Index("ix_data_versions_digest", "digest"),
)

# Which datasets' versions are made of an object (listing, bundle, file or profile): reading
# an object needs read access to a project that holds it through a run or a dataset.
data_objects = Table(
    "data_objects",
    metadata,
    Column("digest", String(80), primary_key=True),
    Column("dataset", String(128), ForeignKey("datasets.name"), primary_key=True),
)

lineage_edges = Table(
    "lineage_edges",
    metadata,
    Column("src_kind", String(32), primary_key=True),
    Column("src_id", String(255), primary_key=True),
    Column("relation", String(32), primary_key=True),
    Column("dst_kind", String(32), primary_key=True),
    Column("dst_id", String(255), primary_key=True),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_lineage_edges_dst", "dst_kind", "dst_id"),
)

# The model registry: models (a name in a project), their versions (each a model package,
# named by its manifest's digest, with the package's files, manifest and scan findings as
# JSON), aliases that point at a version, model cards, and the objects each model's
# packages are made of (who may read an object, as for data_objects).
models = Table(
    "models",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("project", String(63), ForeignKey("projects.name"), nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("model", String(128), ForeignKey("models.name"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("digest", String(80), nullable=False),
    Column("flavor", String(32), nullable=False),
    Column("run_id", String(32), nullable=True),
    Column("files", Text, nullable=False),
    Column("manifest", Text, nullable=False),
    Column("findings", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("model", "version", name="uq_model_versions_model_version"),
    Index("ix_model_versions_digest", "digest"),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("model", String(128), ForeignKey("models.name"), primary_key=True),
    Column("alias", String(63), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_by", String(255), nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

model_cards = Table(
    "model_cards",
    metadata,
    Column("model", String(128), ForeignKey("models.name"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("card", Text, nullable=False),
    Column("updated_by", String(255), nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

model_objects = Table(
    "model_objects",
    metadata,
    Column("digest", String(80), primary_key=True),
    Column("model", String(128), ForeignKey("models.name"), primary_key=True),
)

# What a served model version answered: each batch a columnar file (an object the model
# holds, in model_objects), indexed by the time it spans.
model_traffic = Table(
    "model_traffic",
    metadata,
    Column("id", RunKey, primary_key=True, autoincrement=True),
    Column("model", String(128), ForeignKey("models.name"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("first_at", BigInteger, nullable=False),
    Column("last_at", BigInteger, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("digest", String(80), nullable=False),
    Column("logged_at", BigInteger, nullable=False),
    Column("logged_by", String(255), nullable=False),
    Index("ix_model_traffic_window", "model", "last_at"),
)

# Monitors: what watches a model's traffic (the definition as JSON), and each evaluation
# of a window, numbered per monitor, its full report an object held by the model.
monitors = Table(
    "monitors",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("model", String(128), ForeignKey("models.name"), nullable=False),
    Column("definition", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(255), nullable=False),
)

monitor_results = Table(
    "monitor_results",
    metadata,
    Column("id", RunKey, primary_key=True, autoincrement=True),
    Column("monitor", String(128), ForeignKey("monitors.name"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("since", BigInteger, nullable=False),
    Column("until", BigInteger, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("state", String(16), nullable=False),
    Column("drift_share", Double, nullable=False),
    Column("drifted", Text, nullable=False),
    Column("findings", Integer, nullable=False),
    Column("report", String(80), nullable=False),
    Column("evaluated_at", BigInteger, nullable=False),
    Column("evaluated_by", String(255), nullable=False),
    UniqueConstraint("monitor", "number", name="uq_monitor_results_number"),
)

# Labels that arrived after the answers, by model and request id (the last one stands).
labels = Table(
    "labels",
    metadata,
    Column("model", String(128), ForeignKey("models.name"), primary_key=True),
    Column("request_id", String(128), primary_key=True),
    Column("label", Text, nullable=False),
    Column("logged_at", BigInteger, nullable=False),
    Column("logged_by", String(255), nullable=False),
)

# Who uploaded the bytes of an object (server-side): proof of possession, so an account
# may record an object another project holds only if it sent the bytes itself. Not a
# foreign key to users: a server without authentication uploads as "anonymous".
object_uploads = Table(
    "object_uploads",
    metadata,
    Column("digest", String(80), primary_key=True),
    Column("user_name", String(255), primary_key=True),
    Column("created_at", BigInteger, nullable=False),
)

# Releases: environments with their policy (the YAML as given, and its parsed canonical
# JSON and digest), promotion requests with their gate results (JSON) and approvals, and
# each environment's deployment history, which the environment's alias on each model
# (model_aliases, alias = environment name) agrees with. Webhook deliveries are an outbox:
# written in the release's transaction, sent after it commits, retried until delivered.
environments = Table(
    "environments",
    metadata,
    Column("name", String(63), primary_key=True),
    Column("policy_text", Text, nullable=False),
    Column("policy_json", Text, nullable=False),
    Column("policy_digest", String(80), nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_by", String(255), nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

promotion_requests = Table(
    "promotion_requests",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("model", String(128), ForeignKey("models.name"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("digest", String(80), nullable=False),
    Column("environment", String(63), ForeignKey("environments.name"), nullable=False),
    Column("project", String(63), nullable=False),
    Column("state", String(16), nullable=False),
    Column("requester", String(255), nullable=False),
    Column("requesters", Text, nullable=False),  # JSON: everyone who opened or updated it
    Column("reason", Text, nullable=False),
    Column("policy_digest", String(80), nullable=False),
    Column("gates", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("decided_by", String(255), nullable=True),
    Column("decision", Text, nullable=False),
    Index("ix_promotion_requests_target", "model", "environment", "state"),
)

request_approvals = Table(
    "request_approvals",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(32), ForeignKey("promotion_requests.id"), nullable=False),
    Column("by", String(255), nullable=False),
    Column("role", String(16), nullable=True),
    Column("verdict", String(16), nullable=False),
    Column("comment", Text, nullable=False),
    Column("package_digest", String(80), nullable=False),
    Column("policy_digest", String(80), nullable=False),
    Column("at", BigInteger, nullable=False),
    Index("ix_request_approvals_request", "request_id"),
)

deployments = Table(
    "deployments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("environment", String(63), ForeignKey("environments.name"), nullable=False),
    Column("model", String(128), ForeignKey("models.name"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("previous", Integer, nullable=True),
    Column("action", String(16), nullable=False),
    Column("by", String(255), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("reason", Text, nullable=False),
    Column("project", String(63), nullable=False),
    Column("request_id", String(32), nullable=True),
    Index("ix_deployments_environment_model", "environment", "model", "id"),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("url", Text, nullable=False),
    Column("secret", Text, nullable=False),
    Column("environment", String(63), nullable=True),  # None: every environment
    Column("created_by", String(255), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    # A monitor's own (its alerts): posted that monitor's changes of state, no release's.
    Column("monitor", String(128), nullable=True),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("webhook_id", String(32), ForeignKey("webhooks.id"), nullable=False),
    Column("event", String(32), nullable=False),
    Column("body", Text, nullable=False),
    Column("state", String(16), nullable=False),  # pending, delivered, failed
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("delivered_at", BigInteger, nullable=True),
    Index("ix_webhook_deliveries_state", "state"),
)

# The installation this database is: one row, made by the migration that made the table.
# Every audit checkpoint names it, so two installations' checkpoints are never mixed.
installation = Table(
    "installation",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("created_at", BigInteger, nullable=False),
)
