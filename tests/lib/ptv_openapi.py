"""Checks of recorded requests against one of Twilio's OpenAPI documents
(tests/emulator/twilio-openapi/).  Standard library only.

    import ptv_openapi
    spec = ptv_openapi.load("twilio_api_v2010_messages.json")
    for r in em.requests():
        problems += ptv_openapi.openapi_problems(spec, r, auth_users={em.account_sid})

A request is an entry of the emulator's request log: method, path (with
its query), form (field -> value), content_type, auth_user.
"""

import json
import os
import re
import urllib.parse

OPENAPI_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                           "emulator", "twilio-openapi")
FORM = "application/x-www-form-urlencoded"


def load(name):
    """One document of tests/emulator/twilio-openapi by file name (or a path)."""
    path = name if os.sep in name else os.path.join(OPENAPI_DIR, name)
    with open(path, encoding="utf-8") as fp:
        return json.load(fp)


def _resolve(spec, schema):
    while isinstance(schema, dict) and "$ref" in schema:
        node = spec
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema or {}


_TEMPLATES = {}


def _templates(spec):
    cache = _TEMPLATES.get(id(spec))
    if cache is None or cache[0] is not spec:
        cache = []
        for path, item in spec["paths"].items():
            rx = "^" + "".join(
                "([^/]+?)" if part.startswith("{") else re.escape(part)
                for part in re.split(r"(\{[^}]+\})", path)) + "$"
            names = re.findall(r"\{([^}]+)\}", path)
            literal = len(re.sub(r"\{[^}]+\}", "", path))
            cache.append((re.compile(rx), path, names, item, literal))
        # The most literal template first (".../Verifications/{Sid}" before
        # ".../{Anything}/{Sid}").
        cache.sort(key=lambda t: -t[4])
        cache = _TEMPLATES[id(spec)] = (spec, cache)
    return cache[1]


def match_path(spec, path):
    """(template, {parameter: value}, path item) of the path without its
    query, or None."""
    path = urllib.parse.urlsplit(path).path
    for rx, template, names, item, _n in _templates(spec):
        m = rx.match(path)
        if m:
            return template, dict(zip(names, m.groups())), item
    return None


def value_problems(spec, name, schema, value):
    """What is wrong with one string value against its schema: type,
    enum, pattern, length."""
    schema = _resolve(spec, schema)
    if schema.get("type") == "array":
        schema = _resolve(spec, schema.get("items", {}))
    t = schema.get("type")
    out = []
    if t == "integer" and not re.match(r"^-?[0-9]+$", value):
        out.append("%s=%r is not an integer" % (name, value))
    elif t == "number" and not re.match(r"^-?[0-9]+(\.[0-9]+)?$", value):
        out.append("%s=%r is not a number" % (name, value))
    elif t == "boolean" and value.lower() not in ("true", "false"):
        out.append("%s=%r is not a boolean" % (name, value))
    if "enum" in schema and value not in schema["enum"]:
        out.append("%s=%r not in %s" % (name, value, schema["enum"]))
    if "pattern" in schema and not re.search(schema["pattern"], value):
        out.append("%s=%r does not match %s" % (name, value, schema["pattern"]))
    if "minLength" in schema and len(value) < schema["minLength"]:
        out.append("%s=%r shorter than %d" % (name, value, schema["minLength"]))
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        out.append("%s=%r longer than %d" % (name, value, schema["maxLength"]))
    return out


def openapi_problems(spec, request, auth_users=None):
    """The ways one recorded request departs from the OpenAPI document
    spec: no path template matches, the method is not an operation of it,
    a path parameter breaks its schema, a query parameter is unknown, the
    form has a field the request schema does not list or lacks a required
    one or has a value not of its type/enum/pattern, the content type is
    not form-encoded (for an operation with a form body), the Basic auth
    user is not one of auth_users (when given).  Returns a list of
    strings, empty when the request follows the document."""
    method = request["method"].upper()
    raw = request["path"]
    found = match_path(spec, raw)
    if found is None:
        return ["no OpenAPI path for %s" % raw]
    template, params, item = found
    where = "%s %s" % (method, template)
    op = item.get(method.lower())
    if not isinstance(op, dict) or "responses" not in op:
        return ["%s: not an operation of the document" % where]
    problems = []
    declared = {(p.get("in"), p.get("name")): p for p in
                (_resolve(spec, p) for p in item.get("parameters", []) +
                 op.get("parameters", []))}
    for name, value in params.items():
        p = declared.get(("path", name))
        if p is None:
            problems.append("%s: path parameter %s not declared" % (where, name))
            continue
        problems += ["%s: %s" % (where, e) for e in
                     value_problems(spec, name, p.get("schema", {}),
                                    urllib.parse.unquote(value))]
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(raw).query,
                                  keep_blank_values=True)
    for name, values in query.items():
        p = declared.get(("query", name))
        if p is None:
            problems.append("%s: query parameter %s not in the document" % (where, name))
            continue
        for v in values:
            problems += ["%s: %s" % (where, e) for e in
                         value_problems(spec, name, p.get("schema", {}), v)]
    for (where_in, name), p in declared.items():
        if where_in == "query" and p.get("required") and name not in query:
            problems.append("%s: required query parameter %s missing" % (where, name))
    form = request.get("form") or {}
    body = op.get("requestBody")
    if body is None:
        if form:
            problems.append("%s: a form body where the document has none" % where)
    else:
        content = body.get("content", {})
        ctype = (request.get("content_type") or "").split(";", 1)[0].strip().lower()
        if ctype not in content:
            problems.append("%s: content type %r, the document has %s"
                            % (where, request.get("content_type"), sorted(content)))
        schema = _resolve(spec, content.get(FORM, {}).get("schema", {}))
        props = schema.get("properties", {})
        unknown = sorted(set(form) - set(props))
        missing = sorted(set(schema.get("required", [])) - set(form))
        if unknown:
            problems.append("%s: fields not in the schema: %s" % (where, unknown))
        if missing:
            problems.append("%s: required fields missing: %s" % (where, missing))
        for name, value in sorted(form.items()):
            if name in props:
                problems += ["%s: %s" % (where, e) for e in
                             value_problems(spec, name, props[name], value)]
    if auth_users is not None and request.get("auth_user") not in auth_users:
        problems.append("%s: Basic auth user %s" % (where, request.get("auth_user")))
    return problems


def response_problems(spec, schema_name, obj):
    """The ways a JSON object departs from a component schema of the
    document: keys it does not list or lacks, values not of their type,
    enum or pattern (null allowed where nullable)."""
    schema = spec["components"]["schemas"][schema_name]
    props = schema["properties"]
    problems = []
    if set(obj) != set(props):
        problems.append("%s: keys %s missing, %s extra" % (
            schema_name, sorted(set(props) - set(obj)), sorted(set(obj) - set(props))))
    types = {"string": str, "integer": int, "number": (int, float), "boolean": bool,
             "object": dict, "array": list}
    for name, sub in props.items():
        if name not in obj:
            continue
        value = obj[name]
        sub = _resolve(spec, sub)
        if value is None:
            if not sub.get("nullable"):
                problems.append("%s: %s is null" % (schema_name, name))
            continue
        want = types.get(sub.get("type"))
        if want and (not isinstance(value, want) or
                     (want is int and isinstance(value, bool))):
            problems.append("%s: %s=%r is not %s" % (schema_name, name, value,
                                                      sub.get("type")))
            continue
        if isinstance(value, str):
            problems += ["%s: %s" % (schema_name, e)
                         for e in value_problems(spec, name, sub, value)]
    return problems
