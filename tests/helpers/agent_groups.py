"""The true groups of the generated agent-failure corpus (``agent_corpus``), in two disjoint sets.

``TUNE``: rules and thresholds may be chosen while looking at these. ``SCORE``: written at the same
time from other libraries' and providers' messages of the same kinds, and only scored.

Tags (per-tag scores in ``bench/grouping.py``):
  provider-body  structured error bodies whose type/code/param/error must keep groups apart
  rate-quota     rate limits (tokens, requests) vs exhausted quota or credit
  tool-name      hallucinated tool names (an open set, some of several words)
  word-var       names from a small set: users, tables, columns, types, fields, keyword arguments
  empty-slot     a slot whose value is sometimes empty
  enum           a word that looks like a parameter but names a different failure (kept apart)
  http           HTTP client errors (status text keeps them apart)
  values         ids, numbers, hosts, paths, durations: masked on their own
"""

from __future__ import annotations

from helpers.agent_corpus import Group

_OPENAI = "Error code: ${code} - {'error': {'message': ${msg}, 'type': ${type}, 'param': ${param}, 'code': ${ecode}}}"


def _openai(status: int, msg: str, etype: str, param: str, code: str) -> str:
    return (
        _OPENAI.replace("${code}", str(status))
        .replace("${msg}", msg)
        .replace("${type}", etype)
        .replace("${param}", param)
        .replace("${ecode}", code)
    )


_RL_TPM = (
    "'Rate limit reached for ${model} in organization ${org} on tokens per min (TPM): Limit ${n}, Used ${n}, "
    "Requested ${small}. Please try again in ${secs}. Visit https://platform.openai.com/account/rate-limits to "
    "learn more.'"
)
_RL_RPM = _RL_TPM.replace("tokens per min (TPM)", "requests per min (RPM)")
_QUOTA = (
    "'You exceeded your current quota, please check your plan and billing details. For more information on "
    "this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.'"
)
_CTX = (
    "\"This model's maximum context length is ${big} tokens. However, your messages resulted in ${big} tokens "
    '(${big} in the messages, ${n} in the functions). Please reduce the length of the messages or functions."'
)
_SLACK = (
    "The request to the Slack API failed. (url: https://www.slack.com/api/chat.postMessage)\n"
    "The server responded with: {'ok': False, 'error': '${err}'${extra}}"
)
_LLM = "agent.llm:complete"
_SLACK_FRAME = "agent.tools.slack:post_message"


def _slack(err: str, extra: str = "") -> str:
    return _SLACK.replace("${err}", err).replace("${extra}", extra)


TUNE: list[Group] = [
    Group(
        "openai_quota",
        "rate-quota",
        "openai.RateLimitError",
        _LLM,
        _openai(429, _QUOTA, "'insufficient_quota'", "None", "'insufficient_quota'"),
    ),
    Group(
        "openai_rl_tokens",
        "rate-quota",
        "openai.RateLimitError",
        _LLM,
        _openai(429, _RL_TPM, "'tokens'", "None", "'rate_limit_exceeded'"),
        3,
    ),
    Group(
        "openai_rl_requests",
        "rate-quota",
        "openai.RateLimitError",
        _LLM,
        _openai(429, _RL_RPM, "'requests'", "None", "'rate_limit_exceeded'"),
    ),
    Group(
        "openai_context",
        "provider-body",
        "openai.BadRequestError",
        _LLM,
        _openai(400, _CTX, "'invalid_request_error'", "'messages'", "'context_length_exceeded'"),
        2,
    ),
    Group(
        "openai_tool_order",
        "provider-body",
        "openai.BadRequestError",
        _LLM,
        _openai(
            400,
            "\"An assistant message with 'tool_calls' must be followed by tool messages responding to "
            "each 'tool_call_id'. The following tool_call_ids did not have response messages: ${call}\"",
            "'invalid_request_error'",
            "'messages.[${small}].role'",
            "None",
        ),
    ),
    Group(
        "openai_schema",
        "provider-body",
        "openai.BadRequestError",
        _LLM,
        _openai(
            400,
            "\"Invalid schema for function '${fn}': In context=(), 'additionalProperties' is required to "
            'be supplied and to be false."',
            "'invalid_request_error'",
            "'tools[${small}].function.parameters'",
            "'invalid_function_parameters'",
        ),
    ),
    Group(
        "openai_model_missing",
        "provider-body",
        "openai.NotFoundError",
        _LLM,
        _openai(
            404,
            "'The model `${model}-preview` does not exist or you do not have access to it.'",
            "'invalid_request_error'",
            "None",
            "'model_not_found'",
        ),
    ),
    Group(
        "openai_bad_key",
        "provider-body",
        "openai.AuthenticationError",
        _LLM,
        _openai(
            401,
            "'Incorrect API key provided: ${key}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.'",
            "'invalid_request_error'",
            "None",
            "'invalid_api_key'",
        ),
    ),
    Group(
        "slack_channel",
        "provider-body",
        "slack_sdk.errors.SlackApiError",
        _SLACK_FRAME,
        _slack("channel_not_found"),
    ),
    Group(
        "slack_ratelimited",
        "provider-body",
        "slack_sdk.errors.SlackApiError",
        _SLACK_FRAME,
        _slack("ratelimited"),
    ),
    Group(
        "slack_not_in_channel",
        "provider-body",
        "slack_sdk.errors.SlackApiError",
        _SLACK_FRAME,
        _slack(
            "not_in_channel",
            ", 'warning': 'missing_charset', 'response_metadata': {'warnings': ['missing_charset']}",
        ),
    ),
    Group(
        "qdrant_missing",
        "provider-body",
        "qdrant_client.http.exceptions.UnexpectedResponse",
        "agent.memory:search",
        'Unexpected Response: 404 (Not Found)\nRaw response content:\nb\'{"status":{"error":"Not found: '
        'Collection `${collection}` doesn\'t exist!"},"time":0.0000${small}}\'',
    ),
    Group(
        "qdrant_dim",
        "provider-body",
        "qdrant_client.http.exceptions.UnexpectedResponse",
        "agent.memory:search",
        'Unexpected Response: 400 (Bad Request)\nRaw response content:\nb\'{"status":{"error":"Wrong input: '
        'Vector dimension error: expected dim: 1536, got ${n}"},"time":0.000${small}}\'',
    ),
    Group(
        "anthropic_overloaded",
        "provider-body",
        "anthropic.InternalServerError",
        "agent.llm:complete_claude",
        "Error code: 529 - {'type': 'error', 'error': {'type': 'overloaded_error', 'message': 'Overloaded'}, "
        "'request_id': '${req}'}",
        2,
    ),
    Group(
        "anthropic_too_long",
        "provider-body",
        "anthropic.BadRequestError",
        "agent.llm:complete_claude",
        "Error code: 400 - {'type': 'error', 'error': {'type': 'invalid_request_error', 'message': 'prompt is "
        "too long: ${big} tokens > 200000 maximum'}, 'request_id': '${req}'}",
    ),
    Group(
        "anthropic_tool_use",
        "provider-body",
        "anthropic.BadRequestError",
        "agent.llm:complete_claude",
        "Error code: 400 - {'type': 'error', 'error': {'type': 'invalid_request_error', 'message': "
        "'messages.${small}: `tool_use` ids were found without `tool_result` blocks immediately after: ${toolu}. "
        "Each `tool_use` block must have a corresponding `tool_result` block in the next message.'}}",
    ),
    Group(
        "litellm_ctx",
        "provider-body",
        "litellm.ContextWindowExceededError",
        "agent.router:acompletion",
        "litellm.BadRequestError: ContextWindowExceededError: OpenAIException - This model's maximum context "
        "length is ${big} tokens. However, your messages resulted in ${big} tokens. Please reduce the length of "
        "the messages.",
    ),
    Group(
        "litellm_rl",
        "rate-quota",
        "litellm.RateLimitError",
        "agent.router:acompletion",
        "litellm.RateLimitError: RateLimitError: OpenAIException - Rate limit reached for ${model} in "
        "organization ${org} on tokens per min (TPM): Limit ${n}, Used ${n}, Requested ${n}. Please try again "
        "in ${secs}. Visit https://platform.openai.com/account/rate-limits to learn more.",
        2,
    ),
    Group(
        "invalid_tool",
        "tool-name",
        "agent.errors.ToolNotFound",
        "agent.loop:dispatch",
        "${tool} is not a valid tool, try one of [search, calculator, get_weather].",
        2,
    ),
    Group(
        "json_type",
        "word-var",
        "TypeError",
        "agent.tools.db:dump_row",
        "Object of type ${jtype} is not JSON serializable",
    ),
    Group(
        "pg_table",
        "word-var",
        "sqlalchemy.exc.ProgrammingError",
        "agent.tools.sql:run_query",
        '(psycopg2.errors.UndefinedTable) relation "${table}" does not exist\nLINE 1: SELECT * FROM ${table} '
        "WHERE customer_id = ${n}\n                      ^\n\n[SQL: SELECT * FROM ${table} WHERE customer_id = "
        "%(customer_id)s]\n[parameters: {'customer_id': ${n}}]\n(Background on this error at: "
        "https://sqlalche.me/e/20/f405)",
    ),
    Group(
        "user_budget",
        "word-var",
        "agent.errors.BudgetExceeded",
        "agent.billing:charge",
        "User ${user} has exceeded the daily token budget (${n} of ${n} tokens used)",
    ),
    Group(
        "user_permission",
        "word-var",
        "PermissionError",
        "agent.tools.files:read",
        "Permission denied for user ${user} on ${path}",
    ),
    Group(
        "sqlite_column",
        "word-var",
        "sqlite3.OperationalError",
        "agent.tools.sql:run_query",
        "no such column: ${column}",
    ),
    Group("keyerror_row", "word-var", "KeyError", "agent.tools.crm:normalize", "'${column}'"),
    Group(
        "kwarg",
        "word-var",
        "TypeError",
        "agent.tools.search:run",
        "search() got an unexpected keyword argument '${kwarg}'",
    ),
    Group(
        "pyd_missing",
        "word-var",
        "pydantic_core._pydantic_core.ValidationError",
        "agent.tools.schema:parse_args",
        "1 validation error for SearchArgs\n${field}\n  Field required [type=missing, input_value={'q': "
        "'${text}'}, input_type=dict]\n    For further information visit https://errors.pydantic.dev/2.${small}/v/missing",
    ),
    Group(
        "pyd_int",
        "provider-body",
        "pydantic_core._pydantic_core.ValidationError",
        "agent.tools.schema:parse_args",
        "1 validation error for SearchArgs\nlimit\n  Input should be a valid integer, unable to parse string as "
        "an integer [type=int_parsing, input_value='${word}', input_type=str]\n    For further information "
        "visit https://errors.pydantic.dev/2.${small}/v/int_parsing",
    ),
    Group(
        "httpx_404",
        "http",
        "httpx.HTTPStatusError",
        "agent.tools.http:fetch",
        "Client error '404 Not Found' for url '${url}'\nFor more information check: "
        "https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/404",
    ),
    Group(
        "httpx_429",
        "http",
        "httpx.HTTPStatusError",
        "agent.tools.http:fetch",
        "Client error '429 Too Many Requests' for url '${url}'\nFor more information check: "
        "https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/429",
    ),
    Group(
        "httpx_503",
        "http",
        "httpx.HTTPStatusError",
        "agent.tools.http:fetch",
        "Server error '503 Service Unavailable' for url '${url}'\nFor more information check: "
        "https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/503",
    ),
    Group(
        "conn_refused",
        "values",
        "requests.exceptions.ConnectionError",
        "agent.tools.weather:forecast",
        "HTTPSConnectionPool(host='${host}', port=${port}): Max retries exceeded with url: "
        "/v1/forecast?city=${city} (Caused by NewConnectionError('<urllib3.connection.HTTPSConnection object at "
        "0x${hex}>: Failed to establish a new connection: [Errno 111] Connection refused'))",
    ),
    Group(
        "read_timeout",
        "values",
        "requests.exceptions.ReadTimeout",
        "agent.tools.weather:forecast",
        "HTTPSConnectionPool(host='${host}', port=443): Read timed out. (read timeout=${small})",
    ),
    Group(
        "json_delim",
        "values",
        "json.decoder.JSONDecodeError",
        "agent.parse:tool_output",
        "Expecting ',' delimiter: line ${small} column ${n} (char ${n})",
    ),
    Group(
        "json_value",
        "values",
        "json.decoder.JSONDecodeError",
        "agent.parse:tool_output",
        "Expecting value: line 1 column 1 (char 0)",
    ),
    Group(
        "no_handler",
        "empty-slot",
        "agent.errors.ToolNotFound",
        "agent.router:route",
        "No handler registered for tool ${fn_opt} (agent ${agent})",
    ),
    Group(
        "mcp_disconnect",
        "empty-slot",
        "agent.mcp.ServerDisconnected",
        "agent.mcp:call_tool",
        "MCP server ${server} (${url_opt}) disconnected: EOF while reading response",
    ),
    Group(
        "run_failed",
        "enum",
        "agent.errors.RunFailed",
        "agent.assistants:wait_run",
        "Run run_${hex} ended with status failed",
    ),
    Group(
        "run_expired",
        "enum",
        "agent.errors.RunFailed",
        "agent.assistants:wait_run",
        "Run run_${hex} ended with status expired",
    ),
    Group(
        "run_cancelled",
        "enum",
        "agent.errors.RunFailed",
        "agent.assistants:wait_run",
        "Run run_${hex} ended with status cancelled",
        0.3,
    ),
    Group(
        "run_action",
        "enum",
        "agent.errors.RunFailed",
        "agent.assistants:wait_run",
        "Run run_${hex} ended with status requires_action",
        0.5,
    ),
    Group("openai_timeout", "values", "openai.APITimeoutError", _LLM, "Request timed out."),
    Group(
        "file_missing",
        "values",
        "FileNotFoundError",
        "agent.tools.files:read",
        "[Errno 2] No such file or directory: '${path}'",
    ),
    Group(
        "tz", "word-var", "ValueError", "agent.tools.calendar:book", "Unknown timezone ${city} for ${email}"
    ),
    Group(
        "recursion",
        "values",
        "langgraph.errors.GraphRecursionError",
        "agent.graph:invoke",
        "Recursion limit of ${small} reached without hitting a stop condition. You can increase the limit by "
        "setting the `recursion_limit` config key.",
    ),
]

_ROUTER = "agent.router:acompletion"
_LITELLM_JSON = (
    'litellm.RateLimitError: RateLimitError: OpenAIException - Error code: 429 - {"error": {"message": '
    '${msg}, "type": ${type}, "param": null, "code": ${code}}}'
)
_AZURE_RL = (
    '"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-${small}-01 have '
    "exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after ${small} seconds. "
    "Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate "
    'limit."'
)
_CLAUDE = "agent.llm:claude"
_NOTIFY = "agent.notify:slack_alert"
_GH = (
    '${status} {"message": ${msg}, "documentation_url": '
    '"https://docs.github.com/rest/issues/issues#create-an-issue", "status": "${status}"}'
)
_PINECONE = (
    "(${status})\nReason: ${reason}\nHTTP response headers: HTTPHeaderDict({'content-type': 'application/json', "
    "'date': 'Tue, ${small} Jun 2025 10:${small}:00 GMT', 'x-pinecone-api-version': '2025-04', "
    "'content-length': '${small}', 'x-envoy-upstream-service-time': '${small}', 'server': 'envoy'})\n"
    'HTTP response body: {"code":${grpc},"message":${msg},"details":[]}'
)


def _fill(text: str, **parts: str) -> str:
    for key, value in parts.items():
        text = text.replace("${" + key + "}", value)
    return text


SCORE: list[Group] = [
    Group(
        "llm_json_quota",
        "rate-quota",
        "litellm.RateLimitError",
        _ROUTER,
        _fill(
            _LITELLM_JSON,
            msg=_QUOTA.replace("'", '"'),
            type='"insufficient_quota"',
            code='"insufficient_quota"',
        ),
    ),
    Group(
        "llm_json_tpm",
        "rate-quota",
        "litellm.RateLimitError",
        _ROUTER,
        _fill(_LITELLM_JSON, msg=_RL_TPM.replace("'", '"'), type='"tokens"', code='"rate_limit_exceeded"'),
        3,
    ),
    Group(
        "llm_json_rpm",
        "rate-quota",
        "litellm.RateLimitError",
        _ROUTER,
        _fill(_LITELLM_JSON, msg=_RL_RPM.replace("'", '"'), type='"requests"', code='"rate_limit_exceeded"'),
    ),
    Group(
        "azure_rl",
        "rate-quota",
        "openai.RateLimitError",
        "agent.llm:azure_chat",
        "Error code: 429 - {'error': {'code': '429', 'message': " + _AZURE_RL + "}}",
        2,
    ),
    Group(
        "azure_filter",
        "provider-body",
        "openai.BadRequestError",
        "agent.llm:azure_chat",
        "Error code: 400 - {'error': {'message': \"The response was filtered due to the prompt triggering Azure "
        "OpenAI's content management policy. Please modify your prompt and retry.\", 'type': None, 'param': "
        "'prompt', 'code': 'content_filter', 'status': 400, 'innererror': {'code': "
        "'ResponsibleAIPolicyViolation', 'content_filter_result': {'hate': {'filtered': False, 'severity': "
        "'safe'}, 'self_harm': {'filtered': False, 'severity': 'safe'}, 'violence': {'filtered': True, "
        "'severity': 'medium'}}}}}",
    ),
    Group(
        "azure_ctx",
        "provider-body",
        "openai.BadRequestError",
        "agent.llm:azure_chat",
        'Error code: 400 - {"error": {"message": "This model\'s maximum context length is ${big} tokens. '
        'However, your messages resulted in ${big} tokens. Please reduce the length of the messages.", '
        '"type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}',
        2,
    ),
    Group(
        "azure_unsupported",
        "provider-body",
        "openai.BadRequestError",
        "agent.llm:azure_chat",
        _openai(
            400,
            "\"Unsupported parameter: 'max_tokens' is not supported with this model. Use "
            "'max_completion_tokens' instead.\"",
            "'invalid_request_error'",
            "'max_tokens'",
            "'unsupported_parameter'",
        ),
    ),
    Group(
        "azure_tool_role",
        "provider-body",
        "openai.BadRequestError",
        "agent.llm:azure_chat",
        _openai(
            400,
            "\"Invalid parameter: messages with role 'tool' must be a response to a preceeding message "
            "with 'tool_calls'.\"",
            "'invalid_request_error'",
            "'messages.[${small}].role'",
            "None",
        ),
    ),
    Group(
        "claude_rl",
        "rate-quota",
        "anthropic.RateLimitError",
        _CLAUDE,
        "Error code: 429 - {'type': 'error', 'error': {'type': 'rate_limit_error', 'message': 'This request would "
        "exceed the rate limit for your organization (${uuid}) of ${thousands} input tokens per minute. For "
        "details, refer to: https://docs.anthropic.com/en/api/rate-limits. You can see the response headers for "
        "current usage. Please reduce the prompt length or the maximum tokens requested, or try again later.'}}",
        2,
    ),
    Group(
        "claude_credit",
        "rate-quota",
        "anthropic.BadRequestError",
        _CLAUDE,
        "Error code: 400 - {'type': 'error', 'error': {'type': 'invalid_request_error', 'message': 'Your credit "
        "balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase "
        "credits.'}, 'request_id': '${req}'}",
    ),
    Group(
        "claude_max_tokens",
        "provider-body",
        "anthropic.BadRequestError",
        _CLAUDE,
        "Error code: 400 - {'type': 'error', 'error': {'type': 'invalid_request_error', 'message': 'max_tokens: "
        "${big} > ${n}, which is the maximum allowed number of output tokens for ${model}'}, 'request_id': "
        "'${req}'}",
    ),
    Group(
        "slack_auth",
        "provider-body",
        "slack_sdk.errors.SlackApiError",
        _NOTIFY,
        _SLACK.replace("${err}", "invalid_auth").replace("${extra}", ""),
    ),
    Group(
        "slack_archived",
        "provider-body",
        "slack_sdk.errors.SlackApiError",
        _NOTIFY,
        _SLACK.replace("${err}", "is_archived").replace("${extra}", ""),
    ),
    Group(
        "slack_too_long",
        "provider-body",
        "slack_sdk.errors.SlackApiError",
        _NOTIFY,
        _SLACK.replace("${err}", "msg_too_long").replace("${extra}", ", 'warning': 'missing_charset'"),
    ),
    Group(
        "pinecone_ns",
        "provider-body",
        "pinecone.exceptions.NotFoundException",
        "agent.memory:upsert",
        _fill(_PINECONE, status="404", reason="Not Found", grpc="5", msg='"Namespace not found"'),
    ),
    Group(
        "pinecone_dim",
        "provider-body",
        "pinecone.exceptions.PineconeApiException",
        "agent.memory:upsert",
        _fill(
            _PINECONE,
            status="400",
            reason="Bad Request",
            grpc="3",
            msg='"Vector dimension ${n} does not match the dimension of the index 1536"',
        ),
    ),
    Group(
        "pinecone_rl",
        "rate-quota",
        "pinecone.exceptions.PineconeApiException",
        "agent.memory:upsert",
        _fill(
            _PINECONE,
            status="429",
            reason="Too Many Requests",
            grpc="8",
            msg="\"Request failed. You've reached the max write units per second limit (${n}/s) for index "
            '${collection}. Learn more: https://docs.pinecone.io/reference/api/database-limits"',
        ),
    ),
    Group(
        "qdrant_timeout",
        "values",
        "qdrant_client.http.exceptions.ResponseHandlingException",
        "agent.memory:upsert",
        "timed out",
    ),
    Group(
        "gh_404",
        "provider-body",
        "github.GithubException",
        "agent.tools.github:create_issue",
        _fill(_GH, status="404", msg='"Not Found"'),
    ),
    Group(
        "gh_rate",
        "provider-body",
        "github.GithubException",
        "agent.tools.github:create_issue",
        _fill(_GH, status="403", msg='"API rate limit exceeded for user ID ${n}."'),
    ),
    Group(
        "gh_invalid",
        "provider-body",
        "github.GithubException",
        "agent.tools.github:create_issue",
        '422 {"message": "Validation Failed", "errors": [{"resource": "Issue", "code": '
        '"missing_field", "field": "title"}], "documentation_url": '
        '"https://docs.github.com/rest/issues/issues#create-an-issue", "status": "422"}',
    ),
    Group(
        "crew_tool",
        "tool-name",
        "crewai.tools.ToolUsageError",
        "agent.crew:run_task",
        "Action '${tool}' don't exist, these are the only available Actions:\nTool Name: search_docs\nTool "
        "Arguments: {'query': {'description': None, 'type': 'str'}}\nTool Description: Search the docs",
        2,
    ),
    Group(
        "sdk_tool",
        "tool-name",
        "agents.exceptions.ModelBehaviorError",
        "agent.runner:run",
        "Tool ${tool} not found in agent ${agent}",
        2,
    ),
    Group(
        "orjson_type",
        "word-var",
        "orjson.JSONEncodeError",
        "agent.memory:save",
        "Type is not JSON serializable: ${qualtype}",
    ),
    Group(
        "sqlite_table",
        "word-var",
        "sqlite3.OperationalError",
        "agent.tools.sql:query",
        "no such table: ${table}",
    ),
    Group(
        "quota_ws",
        "word-var",
        "agent.errors.QuotaExceeded",
        "agent.billing:check",
        "Monthly quota exceeded for workspace ${workspace}: ${n} of ${n} requests",
    ),
    Group(
        "login",
        "word-var",
        "agent.auth.AuthError",
        "agent.auth:login",
        "Invalid credentials for user ${user}",
    ),
    Group(
        "unique",
        "word-var",
        "sqlalchemy.exc.IntegrityError",
        "agent.tools.crm:upsert_contact",
        '(psycopg2.errors.UniqueViolation) duplicate key value violates unique constraint "contacts_${column}_key"'
        "\nDETAIL:  Key (${column})=(${email}) already exists.",
    ),
    Group(
        "prompt_vars",
        "word-var",
        "KeyError",
        "agent.prompts:render",
        "\"Input to ChatPromptTemplate is missing variables {'${var}'}.  Expected: ['${var}', 'question'] "
        "Received: ['question']\\nNote: if you intended {${var}} to be part of the string and not a variable, "
        "please escape it with double curly braces like: '{{${var}}}'.\"",
    ),
    Group(
        "pyd_str",
        "provider-body",
        "pydantic_core._pydantic_core.ValidationError",
        "agent.config:load",
        "1 validation error for Settings\n${field}\n  Input should be a valid string [type=string_type, "
        "input_value=${n}, input_type=int]\n    For further information visit "
        "https://errors.pydantic.dev/2.${small}/v/string_type",
    ),
    Group(
        "pyd_literal",
        "provider-body",
        "pydantic_core._pydantic_core.ValidationError",
        "agent.config:load",
        "1 validation error for Settings\norder\n  Input should be 'asc' or 'desc' [type=literal_error, "
        "input_value='${word}', input_type=str]\n    For further information visit "
        "https://errors.pydantic.dev/2.${small}/v/literal_error",
    ),
    Group(
        "aio_404",
        "http",
        "aiohttp.ClientResponseError",
        "agent.tools.http:aget",
        "404, message='Not Found', url='${url}'",
    ),
    Group(
        "aio_500",
        "http",
        "aiohttp.ClientResponseError",
        "agent.tools.http:aget",
        "500, message='Internal Server Error', url='${url}'",
    ),
    Group(
        "aio_429",
        "http",
        "aiohttp.ClientResponseError",
        "agent.tools.http:aget",
        "429, message='Too Many Requests', url='${url}'",
    ),
    Group(
        "req_404",
        "http",
        "requests.exceptions.HTTPError",
        "agent.tools.http:get",
        "404 Client Error: Not Found for url: ${url}",
    ),
    Group(
        "req_500",
        "http",
        "requests.exceptions.HTTPError",
        "agent.tools.http:get",
        "500 Server Error: Internal Server Error for url: ${url}",
    ),
    Group(
        "req_429",
        "http",
        "requests.exceptions.HTTPError",
        "agent.tools.http:get",
        "429 Client Error: Too Many Requests for url: ${url}",
    ),
    Group(
        "ssl",
        "values",
        "ssl.SSLCertVerificationError",
        "agent.tools.http:get",
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer certificate "
        "(_ssl.c:${n})",
    ),
    Group(
        "stop_length",
        "enum",
        "agent.errors.IncompleteAnswer",
        "agent.loop:finish",
        "Completion stopped before the answer was complete (reason: length)",
    ),
    Group(
        "stop_filter",
        "enum",
        "agent.errors.IncompleteAnswer",
        "agent.loop:finish",
        "Completion stopped before the answer was complete (reason: content_filter)",
    ),
    Group(
        "stop_tools",
        "enum",
        "agent.errors.IncompleteAnswer",
        "agent.loop:finish",
        "Completion stopped before the answer was complete (reason: tool_calls)",
        0.3,
    ),
    Group(
        "batch_failed",
        "enum",
        "agent.errors.BatchError",
        "agent.batch:poll",
        "Batch batch_${hex} finished with status failed",
    ),
    Group(
        "batch_expired",
        "enum",
        "agent.errors.BatchError",
        "agent.batch:poll",
        "Batch batch_${hex} finished with status expired",
        0.4,
    ),
    Group(
        "tool_empty",
        "empty-slot",
        "agent.errors.EmptyToolResult",
        "agent.loop:observe",
        "Tool ${fn} returned no content (expected ${fmt_opt})",
    ),
    Group(
        "parse_output",
        "empty-slot",
        "langchain_core.exceptions.OutputParserException",
        "agent.loop:parse",
        "Could not parse LLM output: `${text_opt}`",
    ),
    Group(
        "env_missing",
        "word-var",
        "agent.errors.ConfigError",
        "agent.llm:client_for",
        "Missing environment variable ${var}_API_KEY for provider ${workspace}",
    ),
]
