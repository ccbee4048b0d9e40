from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TaskState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_STATE_UNSPECIFIED: _ClassVar[TaskState]
    QUEUED: _ClassVar[TaskState]
    RUNNING: _ClassVar[TaskState]
    SUCCEEDED: _ClassVar[TaskState]
    FAILED: _ClassVar[TaskState]
    CANCELLED: _ClassVar[TaskState]
    DEADLINE_EXCEEDED: _ClassVar[TaskState]
TASK_STATE_UNSPECIFIED: TaskState
QUEUED: TaskState
RUNNING: TaskState
SUCCEEDED: TaskState
FAILED: TaskState
CANCELLED: TaskState
DEADLINE_EXCEEDED: TaskState

class Empty(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SupersedeRequest(_message.Message):
    __slots__ = ("task_id", "idempotency_key", "owner", "by", "journal_of")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    BY_FIELD_NUMBER: _ClassVar[int]
    JOURNAL_OF_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    idempotency_key: str
    owner: str
    by: str
    journal_of: str
    def __init__(self, task_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., owner: _Optional[str] = ..., by: _Optional[str] = ..., journal_of: _Optional[str] = ...) -> None: ...

class SupersedeReply(_message.Message):
    __slots__ = ("state", "final")
    STATE_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    state: TaskState
    final: TaskResult
    def __init__(self, state: _Optional[_Union[TaskState, str]] = ..., final: _Optional[_Union[TaskResult, _Mapping]] = ...) -> None: ...

class TaskId(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class Task(_message.Message):
    __slots__ = ("id", "type", "priority", "context", "metadata", "complexity", "deadline_ms", "snapshot", "idempotency_key", "context_dict_id", "context_dict_blob")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    COMPLEXITY_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_DICT_ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_DICT_BLOB_FIELD_NUMBER: _ClassVar[int]
    id: str
    type: str
    priority: str
    context: bytes
    metadata: _containers.ScalarMap[str, str]
    complexity: str
    deadline_ms: int
    snapshot: SnapshotManifest
    idempotency_key: str
    context_dict_id: int
    context_dict_blob: str
    def __init__(self, id: _Optional[str] = ..., type: _Optional[str] = ..., priority: _Optional[str] = ..., context: _Optional[bytes] = ..., metadata: _Optional[_Mapping[str, str]] = ..., complexity: _Optional[str] = ..., deadline_ms: _Optional[int] = ..., snapshot: _Optional[_Union[SnapshotManifest, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., context_dict_id: _Optional[int] = ..., context_dict_blob: _Optional[str] = ...) -> None: ...

class SnapshotManifest(_message.Message):
    __slots__ = ("files",)
    class FilesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    FILES_FIELD_NUMBER: _ClassVar[int]
    files: _containers.ScalarMap[str, str]
    def __init__(self, files: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Route(_message.Message):
    __slots__ = ("role", "machine", "model_size", "timeout_ms")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    MACHINE_FIELD_NUMBER: _ClassVar[int]
    MODEL_SIZE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    role: str
    machine: str
    model_size: str
    timeout_ms: int
    def __init__(self, role: _Optional[str] = ..., machine: _Optional[str] = ..., model_size: _Optional[str] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class TaskReceipt(_message.Message):
    __slots__ = ("task_id", "state", "queue_position", "estimated_wait_ms", "route", "deadline_ms", "duplicate", "fallback", "wait_bound_ms", "exceeds_wait_bound", "note")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    QUEUE_POSITION_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FIELD_NUMBER: _ClassVar[int]
    WAIT_BOUND_MS_FIELD_NUMBER: _ClassVar[int]
    EXCEEDS_WAIT_BOUND_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    state: TaskState
    queue_position: int
    estimated_wait_ms: int
    route: Route
    deadline_ms: int
    duplicate: bool
    fallback: str
    wait_bound_ms: int
    exceeds_wait_bound: bool
    note: str
    def __init__(self, task_id: _Optional[str] = ..., state: _Optional[_Union[TaskState, str]] = ..., queue_position: _Optional[int] = ..., estimated_wait_ms: _Optional[int] = ..., route: _Optional[_Union[Route, _Mapping]] = ..., deadline_ms: _Optional[int] = ..., duplicate: _Optional[bool] = ..., fallback: _Optional[str] = ..., wait_bound_ms: _Optional[int] = ..., exceeds_wait_bound: _Optional[bool] = ..., note: _Optional[str] = ...) -> None: ...

class TaskBatch(_message.Message):
    __slots__ = ("tasks",)
    TASKS_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[Task]
    def __init__(self, tasks: _Optional[_Iterable[_Union[Task, _Mapping]]] = ...) -> None: ...

class SubmitOutcome(_message.Message):
    __slots__ = ("receipt", "error_code", "error_message")
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    receipt: TaskReceipt
    error_code: str
    error_message: str
    def __init__(self, receipt: _Optional[_Union[TaskReceipt, _Mapping]] = ..., error_code: _Optional[str] = ..., error_message: _Optional[str] = ...) -> None: ...

class SubmitOutcomes(_message.Message):
    __slots__ = ("outcomes",)
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    outcomes: _containers.RepeatedCompositeFieldContainer[SubmitOutcome]
    def __init__(self, outcomes: _Optional[_Iterable[_Union[SubmitOutcome, _Mapping]]] = ...) -> None: ...

class SubmitStreamRequest(_message.Message):
    __slots__ = ("request_ids", "tasks")
    REQUEST_IDS_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    request_ids: _containers.RepeatedScalarFieldContainer[int]
    tasks: _containers.RepeatedCompositeFieldContainer[Task]
    def __init__(self, request_ids: _Optional[_Iterable[int]] = ..., tasks: _Optional[_Iterable[_Union[Task, _Mapping]]] = ...) -> None: ...

class SubmitStreamReply(_message.Message):
    __slots__ = ("request_ids", "outcomes")
    REQUEST_IDS_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    request_ids: _containers.RepeatedScalarFieldContainer[int]
    outcomes: _containers.RepeatedCompositeFieldContainer[SubmitOutcome]
    def __init__(self, request_ids: _Optional[_Iterable[int]] = ..., outcomes: _Optional[_Iterable[_Union[SubmitOutcome, _Mapping]]] = ...) -> None: ...

class TaskStatus(_message.Message):
    __slots__ = ("task_id", "state", "type", "priority", "worker", "attempt", "queue_position", "estimated_wait_ms", "submitted_ms", "started_ms", "finished_ms", "deadline_ms", "error_code", "error_message", "fallback", "route")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    QUEUE_POSITION_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_MS_FIELD_NUMBER: _ClassVar[int]
    STARTED_MS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_MS_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    state: TaskState
    type: str
    priority: str
    worker: str
    attempt: int
    queue_position: int
    estimated_wait_ms: int
    submitted_ms: int
    started_ms: int
    finished_ms: int
    deadline_ms: int
    error_code: str
    error_message: str
    fallback: str
    route: Route
    def __init__(self, task_id: _Optional[str] = ..., state: _Optional[_Union[TaskState, str]] = ..., type: _Optional[str] = ..., priority: _Optional[str] = ..., worker: _Optional[str] = ..., attempt: _Optional[int] = ..., queue_position: _Optional[int] = ..., estimated_wait_ms: _Optional[int] = ..., submitted_ms: _Optional[int] = ..., started_ms: _Optional[int] = ..., finished_ms: _Optional[int] = ..., deadline_ms: _Optional[int] = ..., error_code: _Optional[str] = ..., error_message: _Optional[str] = ..., fallback: _Optional[str] = ..., route: _Optional[_Union[Route, _Mapping]] = ...) -> None: ...

class TaskResult(_message.Message):
    __slots__ = ("task_id", "kind", "text", "data", "sequence", "attempt", "worker", "fallback", "percentage", "state", "error_code", "stats", "eta_ms")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[TaskResult.Kind]
        PARTIAL: _ClassVar[TaskResult.Kind]
        PROGRESS: _ClassVar[TaskResult.Kind]
        FINAL: _ClassVar[TaskResult.Kind]
        ERROR: _ClassVar[TaskResult.Kind]
    KIND_UNSPECIFIED: TaskResult.Kind
    PARTIAL: TaskResult.Kind
    PROGRESS: TaskResult.Kind
    FINAL: TaskResult.Kind
    ERROR: TaskResult.Kind
    class StatsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FIELD_NUMBER: _ClassVar[int]
    PERCENTAGE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    ETA_MS_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    kind: TaskResult.Kind
    text: str
    data: bytes
    sequence: int
    attempt: int
    worker: str
    fallback: str
    percentage: int
    state: TaskState
    error_code: str
    stats: _containers.ScalarMap[str, str]
    eta_ms: int
    def __init__(self, task_id: _Optional[str] = ..., kind: _Optional[_Union[TaskResult.Kind, str]] = ..., text: _Optional[str] = ..., data: _Optional[bytes] = ..., sequence: _Optional[int] = ..., attempt: _Optional[int] = ..., worker: _Optional[str] = ..., fallback: _Optional[str] = ..., percentage: _Optional[int] = ..., state: _Optional[_Union[TaskState, str]] = ..., error_code: _Optional[str] = ..., stats: _Optional[_Mapping[str, str]] = ..., eta_ms: _Optional[int] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("task_ids",)
    TASK_IDS_FIELD_NUMBER: _ClassVar[int]
    task_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, task_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class WatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[TaskResult]
    def __init__(self, results: _Optional[_Iterable[_Union[TaskResult, _Mapping]]] = ...) -> None: ...

class SwarmStatusRequest(_message.Message):
    __slots__ = ("recent",)
    RECENT_FIELD_NUMBER: _ClassVar[int]
    recent: int
    def __init__(self, recent: _Optional[int] = ...) -> None: ...

class MachineStatus(_message.Message):
    __slots__ = ("worker_id", "name", "host", "roles", "model_sizes", "capacity", "running", "load", "last_heartbeat_ms_ago", "draining", "peer", "completed", "service_ms", "rtt_ms")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    MODEL_SIZES_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    LOAD_FIELD_NUMBER: _ClassVar[int]
    LAST_HEARTBEAT_MS_AGO_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    SERVICE_MS_FIELD_NUMBER: _ClassVar[int]
    RTT_MS_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    name: str
    host: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    model_sizes: _containers.RepeatedScalarFieldContainer[str]
    capacity: int
    running: int
    load: float
    last_heartbeat_ms_ago: int
    draining: bool
    peer: str
    completed: int
    service_ms: float
    rtt_ms: float
    def __init__(self, worker_id: _Optional[str] = ..., name: _Optional[str] = ..., host: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ..., model_sizes: _Optional[_Iterable[str]] = ..., capacity: _Optional[int] = ..., running: _Optional[int] = ..., load: _Optional[float] = ..., last_heartbeat_ms_ago: _Optional[int] = ..., draining: _Optional[bool] = ..., peer: _Optional[str] = ..., completed: _Optional[int] = ..., service_ms: _Optional[float] = ..., rtt_ms: _Optional[float] = ...) -> None: ...

class QueueStatus(_message.Message):
    __slots__ = ("role", "depth")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    role: str
    depth: int
    def __init__(self, role: _Optional[str] = ..., depth: _Optional[int] = ...) -> None: ...

class TaskSummary(_message.Message):
    __slots__ = ("task_id", "type", "state", "worker", "submitted_ms", "duration_ms", "fallback", "role", "priority", "error_code", "error_message", "percentage", "eta_ms")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_MS_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PERCENTAGE_FIELD_NUMBER: _ClassVar[int]
    ETA_MS_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    type: str
    state: TaskState
    worker: str
    submitted_ms: int
    duration_ms: int
    fallback: str
    role: str
    priority: str
    error_code: str
    error_message: str
    percentage: int
    eta_ms: int
    def __init__(self, task_id: _Optional[str] = ..., type: _Optional[str] = ..., state: _Optional[_Union[TaskState, str]] = ..., worker: _Optional[str] = ..., submitted_ms: _Optional[int] = ..., duration_ms: _Optional[int] = ..., fallback: _Optional[str] = ..., role: _Optional[str] = ..., priority: _Optional[str] = ..., error_code: _Optional[str] = ..., error_message: _Optional[str] = ..., percentage: _Optional[int] = ..., eta_ms: _Optional[int] = ...) -> None: ...

class RouteRule(_message.Message):
    __slots__ = ("task_type", "role", "priority", "complexity", "machine", "model_size", "timeout_ms")
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    COMPLEXITY_FIELD_NUMBER: _ClassVar[int]
    MACHINE_FIELD_NUMBER: _ClassVar[int]
    MODEL_SIZE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    task_type: str
    role: str
    priority: str
    complexity: str
    machine: str
    model_size: str
    timeout_ms: int
    def __init__(self, task_type: _Optional[str] = ..., role: _Optional[str] = ..., priority: _Optional[str] = ..., complexity: _Optional[str] = ..., machine: _Optional[str] = ..., model_size: _Optional[str] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class SwarmStatus(_message.Message):
    __slots__ = ("coordinator", "machines", "queues", "queue_depth", "recent", "counts", "local_roles", "uptime_ms", "active", "routes")
    class CountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    COORDINATOR_FIELD_NUMBER: _ClassVar[int]
    MACHINES_FIELD_NUMBER: _ClassVar[int]
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    QUEUE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    RECENT_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    LOCAL_ROLES_FIELD_NUMBER: _ClassVar[int]
    UPTIME_MS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    coordinator: str
    machines: _containers.RepeatedCompositeFieldContainer[MachineStatus]
    queues: _containers.RepeatedCompositeFieldContainer[QueueStatus]
    queue_depth: int
    recent: _containers.RepeatedCompositeFieldContainer[TaskSummary]
    counts: _containers.ScalarMap[str, int]
    local_roles: _containers.RepeatedScalarFieldContainer[str]
    uptime_ms: int
    active: _containers.RepeatedCompositeFieldContainer[TaskSummary]
    routes: _containers.RepeatedCompositeFieldContainer[RouteRule]
    def __init__(self, coordinator: _Optional[str] = ..., machines: _Optional[_Iterable[_Union[MachineStatus, _Mapping]]] = ..., queues: _Optional[_Iterable[_Union[QueueStatus, _Mapping]]] = ..., queue_depth: _Optional[int] = ..., recent: _Optional[_Iterable[_Union[TaskSummary, _Mapping]]] = ..., counts: _Optional[_Mapping[str, int]] = ..., local_roles: _Optional[_Iterable[str]] = ..., uptime_ms: _Optional[int] = ..., active: _Optional[_Iterable[_Union[TaskSummary, _Mapping]]] = ..., routes: _Optional[_Iterable[_Union[RouteRule, _Mapping]]] = ...) -> None: ...

class BlobRefs(_message.Message):
    __slots__ = ("hashes",)
    HASHES_FIELD_NUMBER: _ClassVar[int]
    hashes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, hashes: _Optional[_Iterable[str]] = ...) -> None: ...

class Blob(_message.Message):
    __slots__ = ("hash", "data", "dict_id")
    HASH_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    DICT_ID_FIELD_NUMBER: _ClassVar[int]
    hash: str
    data: bytes
    dict_id: int
    def __init__(self, hash: _Optional[str] = ..., data: _Optional[bytes] = ..., dict_id: _Optional[int] = ...) -> None: ...

class BlobBatch(_message.Message):
    __slots__ = ("blobs",)
    BLOBS_FIELD_NUMBER: _ClassVar[int]
    blobs: _containers.RepeatedCompositeFieldContainer[Blob]
    def __init__(self, blobs: _Optional[_Iterable[_Union[Blob, _Mapping]]] = ...) -> None: ...

class WorkerMessage(_message.Message):
    __slots__ = ("register", "heartbeat", "partial", "complete", "fail", "batch")
    REGISTER_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    FAIL_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    register: RegisterRequest
    heartbeat: Heartbeat
    partial: PartialResult
    complete: CompleteRequest
    fail: FailRequest
    batch: WorkerBatch
    def __init__(self, register: _Optional[_Union[RegisterRequest, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., partial: _Optional[_Union[PartialResult, _Mapping]] = ..., complete: _Optional[_Union[CompleteRequest, _Mapping]] = ..., fail: _Optional[_Union[FailRequest, _Mapping]] = ..., batch: _Optional[_Union[WorkerBatch, _Mapping]] = ...) -> None: ...

class WorkerBatch(_message.Message):
    __slots__ = ("messages",)
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[WorkerMessage]
    def __init__(self, messages: _Optional[_Iterable[_Union[WorkerMessage, _Mapping]]] = ...) -> None: ...

class CoordinatorMessage(_message.Message):
    __slots__ = ("registered", "lease", "cancel", "heartbeat_ack", "batch")
    REGISTERED_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_ACK_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    registered: Registered
    lease: LeaseTask
    cancel: CancelRequest
    heartbeat_ack: HeartbeatAck
    batch: CoordinatorBatch
    def __init__(self, registered: _Optional[_Union[Registered, _Mapping]] = ..., lease: _Optional[_Union[LeaseTask, _Mapping]] = ..., cancel: _Optional[_Union[CancelRequest, _Mapping]] = ..., heartbeat_ack: _Optional[_Union[HeartbeatAck, _Mapping]] = ..., batch: _Optional[_Union[CoordinatorBatch, _Mapping]] = ...) -> None: ...

class CoordinatorBatch(_message.Message):
    __slots__ = ("messages",)
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[CoordinatorMessage]
    def __init__(self, messages: _Optional[_Iterable[_Union[CoordinatorMessage, _Mapping]]] = ...) -> None: ...

class RegisterRequest(_message.Message):
    __slots__ = ("name", "host", "roles", "model_sizes", "capacity", "version", "fallback")
    NAME_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    MODEL_SIZES_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FIELD_NUMBER: _ClassVar[int]
    name: str
    host: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    model_sizes: _containers.RepeatedScalarFieldContainer[str]
    capacity: int
    version: str
    fallback: bool
    def __init__(self, name: _Optional[str] = ..., host: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ..., model_sizes: _Optional[_Iterable[str]] = ..., capacity: _Optional[int] = ..., version: _Optional[str] = ..., fallback: _Optional[bool] = ...) -> None: ...

class Registered(_message.Message):
    __slots__ = ("worker_id", "heartbeat_interval_ms", "lease_timeout_ms", "max_result_bytes", "fence_ms")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    LEASE_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_RESULT_BYTES_FIELD_NUMBER: _ClassVar[int]
    FENCE_MS_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    heartbeat_interval_ms: int
    lease_timeout_ms: int
    max_result_bytes: int
    fence_ms: int
    def __init__(self, worker_id: _Optional[str] = ..., heartbeat_interval_ms: _Optional[int] = ..., lease_timeout_ms: _Optional[int] = ..., max_result_bytes: _Optional[int] = ..., fence_ms: _Optional[int] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("load", "running", "draining", "sequence", "rtt_ms", "busy_elsewhere")
    LOAD_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    RTT_MS_FIELD_NUMBER: _ClassVar[int]
    BUSY_ELSEWHERE_FIELD_NUMBER: _ClassVar[int]
    load: float
    running: _containers.RepeatedScalarFieldContainer[str]
    draining: bool
    sequence: int
    rtt_ms: int
    busy_elsewhere: int
    def __init__(self, load: _Optional[float] = ..., running: _Optional[_Iterable[str]] = ..., draining: _Optional[bool] = ..., sequence: _Optional[int] = ..., rtt_ms: _Optional[int] = ..., busy_elsewhere: _Optional[int] = ...) -> None: ...

class HeartbeatAck(_message.Message):
    __slots__ = ("cancel", "sequence")
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    cancel: _containers.RepeatedScalarFieldContainer[str]
    sequence: int
    def __init__(self, cancel: _Optional[_Iterable[str]] = ..., sequence: _Optional[int] = ...) -> None: ...

class LeaseTask(_message.Message):
    __slots__ = ("task", "attempt", "role", "deadline_ms", "epoch", "owner")
    TASK_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    task: Task
    attempt: int
    role: str
    deadline_ms: int
    epoch: int
    owner: str
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ..., attempt: _Optional[int] = ..., role: _Optional[str] = ..., deadline_ms: _Optional[int] = ..., epoch: _Optional[int] = ..., owner: _Optional[str] = ...) -> None: ...

class CancelRequest(_message.Message):
    __slots__ = ("task_id", "reason")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    reason: str
    def __init__(self, task_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class PartialResult(_message.Message):
    __slots__ = ("task_id", "attempt", "kind", "text", "data", "percentage", "epoch")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    PERCENTAGE_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    attempt: int
    kind: TaskResult.Kind
    text: str
    data: bytes
    percentage: int
    epoch: int
    def __init__(self, task_id: _Optional[str] = ..., attempt: _Optional[int] = ..., kind: _Optional[_Union[TaskResult.Kind, str]] = ..., text: _Optional[str] = ..., data: _Optional[bytes] = ..., percentage: _Optional[int] = ..., epoch: _Optional[int] = ...) -> None: ...

class CompleteRequest(_message.Message):
    __slots__ = ("task_id", "attempt", "text", "data", "stats", "epoch", "run_ms")
    class StatsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    RUN_MS_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    attempt: int
    text: str
    data: bytes
    stats: _containers.ScalarMap[str, str]
    epoch: int
    run_ms: int
    def __init__(self, task_id: _Optional[str] = ..., attempt: _Optional[int] = ..., text: _Optional[str] = ..., data: _Optional[bytes] = ..., stats: _Optional[_Mapping[str, str]] = ..., epoch: _Optional[int] = ..., run_ms: _Optional[int] = ...) -> None: ...

class FailRequest(_message.Message):
    __slots__ = ("task_id", "attempt", "code", "message", "retryable", "epoch")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    attempt: int
    code: str
    message: str
    retryable: bool
    epoch: int
    def __init__(self, task_id: _Optional[str] = ..., attempt: _Optional[int] = ..., code: _Optional[str] = ..., message: _Optional[str] = ..., retryable: _Optional[bool] = ..., epoch: _Optional[int] = ...) -> None: ...
