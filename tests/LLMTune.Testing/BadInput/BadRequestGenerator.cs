using System.Text;
using System.Text.Json;

namespace LLMTune.Testing.BadInput;

/// <summary>Which credentials a case presents: the route's own, none, or wrong ones.</summary>
public enum Credentials
{
    /// <summary>The route's credential: an API key on /v1, the operator token on /admin.</summary>
    Valid,
    None,
    EmptyBearer,
    UnknownBearer,
    WrongScheme,
    /// <summary>A valid credential of the other realm: the operator token on /v1, an API key on /admin.</summary>
    OtherRealm,
}

/// <summary>One malformed request: what it sends and a readable description for failure reports.</summary>
public sealed record BadRequestCase(
    Operation Operation,
    string Description,
    string Path,
    byte[]? Body,
    string? ContentType,
    Credentials Credentials = Credentials.Valid)
{
    public override string ToString() => $"{Operation.Method} {Path.Split('?')[0]} [{Description}{(Credentials == Credentials.Valid ? "" : $"; credentials {Credentials}")}]";
}

/// <summary>
/// Deterministic bad input for every operation of an OpenAPI document: a plausible body built from the declared
/// schema, then each property (nested ones and the snake_case spelling too) replaced by wrong types, nulls, huge and
/// broken strings, operator objects, deep nesting and out-of-range numbers; whole bodies that are empty, not JSON or
/// of the wrong content type; malformed path and query values; missing and wrong credentials.
/// </summary>
public sealed class BadRequestGenerator(
    OpenApiOperations document, int seed, IReadOnlyDictionary<string, RawJson> hints, int oversizedBodyBytes, int maxCasesPerOperation = 1000)
{
    public const string PlausibleBody = "plausible body";

    /// <summary>Values no property of any schema should crash on.</summary>
    public static readonly IReadOnlyList<(string Name, RawJson Value)> BadValues =
    [
        ("null", RawJson.Text("null")),
        ("true", RawJson.Text("true")),
        ("0", RawJson.Text("0")),
        ("-1", RawJson.Text("-1")),
        ("1.5", RawJson.Text("1.5")),
        ("1e309", RawJson.Text("1e309")),
        ("-1e309", RawJson.Text("-1e309")),
        ("1e-400", RawJson.Text("1e-400")),
        ("2^63", RawJson.Text("9223372036854775808")),
        ("-2^63-1", RawJson.Text("-9223372036854775809")),
        ("2^64", RawJson.Text("18446744073709551616")),
        ("2^31", RawJson.Text("2147483648")),
        ("2^31-1", RawJson.Text("2147483647")),
        ("a million", RawJson.Text("1000000")),
        ("empty string", RawJson.String("")),
        ("huge string", RawJson.String(new string('a', 200_000))),
        ("NUL", RawJson.String("\\u0000")),
        ("embedded NUL", RawJson.String("a\\u0000b")),
        ("lone high surrogate", RawJson.String("\\ud800")),
        ("lone low surrogate", RawJson.String("x\\udfffy")),
        ("reversed surrogates", RawJson.String("\\udc00\\ud800")),
        ("emoji", RawJson.String("\\ud83d\\udca5")),
        ("numeric string", RawJson.String("1e309")),
        ("NaN string", RawJson.String("NaN")),
        ("bad date", RawJson.String("9999-99-99T99:99:99Z")),
        ("path traversal", RawJson.String("../../../../etc/passwd")),
        ("empty array", RawJson.Text("[]")),
        ("mixed array", RawJson.Text("[null,1,\"a\",{},[]]")),
        ("array of strings", RawJson.Text("[\"a\",\"b\"]")),
        ("empty object", RawJson.Text("{}")),
        // Objects inside arrays whose usual discriminating fields have the wrong types (content parts, messages, tools).
        ("array of mistyped objects", RawJson.Text("[{\"type\":5,\"text\":{},\"role\":[],\"content\":5,\"name\":true,\"id\":null}]")),
        ("array of text parts with mistyped text", RawJson.Text("[{\"type\":\"text\",\"text\":5}]")),
        ("$gt operator", RawJson.Text("{\"$gt\":\"\"}")),
        ("lone surrogate key", RawJson.Text("{\"\\ud800\":1}")),
        ("$where operator", RawJson.Text("{\"$where\":\"sleep(1000)\",\"$ne\":null}")),
        ("deep array", RawJson.Text(new string('[', 5_000) + new string(']', 5_000))),
        ("deep object", RawJson.Text(string.Concat(Enumerable.Repeat("{\"a\":", 200)) + "1" + new string('}', 200))),
    ];

    /// <summary>Whole bodies: broken, empty, not JSON, not an object, or sent under the wrong content type.</summary>
    private IEnumerable<(string Name, byte[]? Body, string? ContentType)> WholeBodies(string baseBody, bool declaresBody)
    {
        const string json = "application/json";
        var utf8 = Encoding.UTF8;
        yield return ("empty body", [], json);
        yield return ("no body, no content type", null, null);
        yield return ("body without content type", utf8.GetBytes(baseBody), null);
        yield return ("text/plain body", utf8.GetBytes(baseBody), "text/plain");
        yield return ("form body", utf8.GetBytes("a=1&b=2"), "application/x-www-form-urlencoded");
        yield return ("multipart without boundary", utf8.GetBytes(baseBody), "multipart/form-data");
        yield return ("bad content type", utf8.GetBytes(baseBody), "application/json; charset=\"");
        yield return ("utf-16 charset", Encoding.Unicode.GetBytes(baseBody), "application/json; charset=utf-16");
        yield return ("null", utf8.GetBytes("null"), json);
        yield return ("array", utf8.GetBytes($"[{baseBody}]"), json);
        yield return ("string", utf8.GetBytes("\"\\ud800\""), json);
        yield return ("number", utf8.GetBytes("1e309"), json);
        yield return ("truncated", utf8.GetBytes(baseBody[..(baseBody.Length / 2)]), json);
        yield return ("unclosed", utf8.GetBytes("{"), json);
        yield return ("not json", utf8.GetBytes("not json at all"), json);
        yield return ("trailing garbage", utf8.GetBytes(baseBody + " x"), json);
        yield return ("trailing comma", utf8.GetBytes(baseBody.Length > 2 ? baseBody[..^1] + ",}" : "{,}"), json);
        yield return ("comment", utf8.GetBytes("/* c */" + baseBody), json);
        yield return ("$gt operator body", utf8.GetBytes("{\"$gt\":\"\"}"), json);
        yield return ("lone surrogate key", utf8.GetBytes(baseBody.Length > 2 ? baseBody[..^1] + ",\"\\ud800\":\"x\"}" : "{\"\\ud800\":\"x\"}"), json);
        yield return ("deep array body", utf8.GetBytes(new string('[', 100_000) + new string(']', 100_000)), json);
        yield return ("deep object body", utf8.GetBytes(string.Concat(Enumerable.Repeat("{\"a\":", 5_000)) + "1" + new string('}', 5_000)), json);
        yield return ("invalid utf-8", [0x7B, 0x22, 0xFF, 0xFE, 0xED, 0xA0, 0x80, 0x22, 0x3A, 0x31, 0x7D], json);
        yield return ("raw NUL bytes", [0x00, 0x00, 0x7B, 0x7D], json);
        yield return ("utf-8 BOM", [0xEF, 0xBB, 0xBF, .. utf8.GetBytes(baseBody)], json);
        yield return ("duplicate properties", utf8.GetBytes(baseBody.Length > 2 ? baseBody[..^1] + "," + baseBody[1..] : "{}"), json);
        if (!declaresBody)
        {
            // An operation that reads no body answers without reading it; the server then drops the connection mid-upload.
            yield break;
        }

        // Just over the limit: far larger and the server's early 413 races the client still uploading.
        yield return ("oversized body", utf8.GetBytes($"{{\"x\":\"{new string('a', oversizedBodyBytes)}\"}}"), json);
    }

    private static readonly string[] BadPathValues =
    [
        "x", "%00", "a%00b", "%ED%A0%80", "%FF%FE", "%F0%9F%92%A5", "..", "%2E%2E%2F%2E%2E", "%2F", "%25", "%20",
        "-1", "9223372036854775808", "%7B%22%24gt%22%3A%22%22%7D", new string('a', 4_000),
    ];

    private static readonly string[] BadQueryValues =
    [
        "", "abc", "-1", "0", "1.5", "1e309", "9223372036854775808", "2147483648", "%00", "%ED%A0%80", new string('9', 4_000),
        "%7B%22%24gt%22%3A%22%22%7D",
        Uri.EscapeDataString(Convert.ToBase64String(Encoding.UTF8.GetBytes("99999999999999999999|1"))),
        Uri.EscapeDataString(Convert.ToBase64String(Encoding.UTF8.GetBytes("1|-5"))),
        Uri.EscapeDataString(Convert.ToBase64String(Encoding.UTF8.GetBytes("3155378975999999999|2147483647"))),
        Uri.EscapeDataString(Convert.ToBase64String(Encoding.UTF8.GetBytes("-1|1"))),
        Uri.EscapeDataString(Convert.ToBase64String([0xFF, 0xFE, 0x7C, 0x31])),
        "!!!!", "YQ", // not base64; base64 without padding
    ];

    private static readonly Credentials[] WrongCredentials =
        [Credentials.None, Credentials.EmptyBearer, Credentials.UnknownBearer, Credentials.WrongScheme, Credentials.OtherRealm];

    public IReadOnlyList<BadRequestCase> CasesFor(Operation operation)
    {
        var random = new Random(seed ^ StableHash(operation.ToString()));
        var path = PathWith(operation, null, null);
        var cases = new List<BadRequestCase>();
        var isJson = operation.BodyContentType?.Contains("json", StringComparison.OrdinalIgnoreCase) == true;
        var isMultipart = operation.BodyContentType?.StartsWith("multipart/", StringComparison.OrdinalIgnoreCase) == true;

        RawJson? baseBody = isJson && operation.BodySchema is { } schema ? Sample(schema, null, 0) : isJson ? RawJson.Text("{}") : null;
        var baseText = baseBody?.ToString() ?? "{}";
        byte[]? BaseBytes() => isMultipart ? Encoding.UTF8.GetBytes(Form(FormFields(operation.BodySchema)))
            : baseBody is null ? null
            : Encoding.UTF8.GetBytes(baseText);
        var baseContentType = isJson ? "application/json" : isMultipart ? MultipartType : null;

        // The plausible request itself, then each body field replaced by each bad value.
        cases.Add(new(operation, PlausibleBody, path, BaseBytes(), baseContentType));
        if (baseBody is not null)
        {
            var mutations = new List<BadRequestCase>();
            var targets = Targets(baseBody, operation.BodySchema, JsonPath.Root, 0).ToList();
            foreach (var target in targets)
            {
                mutations.Add(Mutated(operation, path, baseBody, [(target, null)], "missing"));
                foreach (var (name, value) in BadValues)
                {
                    mutations.Add(Mutated(operation, path, baseBody, [(target, value)], name));
                }
            }

            // A few random combinations: several fields wrong at once.
            for (var i = 0; i < 20 && targets.Count > 1; i++)
            {
                var picked = targets.OrderBy(_ => random.Next()).Take(random.Next(2, Math.Min(4, targets.Count) + 1))
                    .Select(t => (t, (RawJson?)BadValues[random.Next(BadValues.Count)].Value)).ToList();
                mutations.Add(Mutated(operation, path, baseBody, picked, "combined"));
            }

            mutations.Add(Mutated(operation, path, baseBody, [(JsonPath.Root.Then("$gt"), RawJson.Text("{\"$gt\":\"\"}"))], "extra operator property"));
            cases.AddRange(Bounded(mutations, random, maxCasesPerOperation));
        }

        if (isMultipart)
        {
            cases.AddRange(MultipartCases(operation, path));
        }

        foreach (var (name, body, contentType) in WholeBodies(baseText, operation.BodyContentType is not null))
        {
            cases.Add(new(operation, name, path, body, contentType));
        }

        foreach (var parameter in operation.Parameters)
        {
            var values = parameter.In == "path" ? BadPathValues : parameter.In == "query" ? BadQueryValues : [];
            foreach (var value in values)
            {
                var where = PathWith(operation, parameter.Name, value);
                cases.Add(new(operation, $"{parameter.In} {parameter.Name} = {Shorten(value)}", where, BaseBytes(), baseContentType));
            }

            if (parameter.In == "query")
            {
                cases.Add(new(operation, $"query {parameter.Name} twice", $"{path}{(path.Contains('?') ? '&' : '?')}{parameter.Name}=1&{parameter.Name}=2", BaseBytes(), baseContentType));
            }
        }

        // Credentials are checked before anything else: the plausible request and a broken one, with each wrong credential.
        foreach (var credentials in WrongCredentials)
        {
            cases.Add(new(operation, PlausibleBody, path, BaseBytes(), baseContentType, credentials));
            cases.Add(new(operation, "unclosed body", path, "{"u8.ToArray(), "application/json", credentials));
        }

        return cases;
    }

    /// <summary>Every value in the base body worth replacing: properties, nested properties and array items.</summary>
    private IEnumerable<JsonPath> Targets(RawJson node, JsonElement? schema, JsonPath at, int depth)
    {
        if (depth > 3)
        {
            yield break;
        }

        switch (node)
        {
            case RawObject obj:
                var properties = schema is { } s && s.ValueKind == JsonValueKind.Object && s.TryGetProperty("properties", out var declared) ? declared : default;
                foreach (var (name, value) in obj.Properties)
                {
                    var propertySchema = properties.ValueKind == JsonValueKind.Object && properties.TryGetProperty(name, out var p) ? document.Resolve(p) : (JsonElement?)null;
                    var path = at.Then(name);
                    yield return path;
                    // The snake_case spelling too: OpenAI-compatible endpoints read snake_case while the document names camelCase.
                    if (SnakeCase(name) is var snake && snake != name)
                    {
                        yield return at.Then(snake);
                    }

                    foreach (var inner in Targets(value, propertySchema, path, depth + 1))
                    {
                        yield return inner;
                    }
                }

                break;
            case RawArray { Items.Count: > 0 } array:
                var items = schema is { } a && a.ValueKind == JsonValueKind.Object && a.TryGetProperty("items", out var itemSchema) ? document.Resolve(itemSchema) : (JsonElement?)null;
                yield return at.Then("0");
                foreach (var inner in Targets(array.Items[0], items, at.Then("0"), depth + 1))
                {
                    yield return inner;
                }

                break;
        }
    }

    /// <summary>A plausible value for a schema: the hint for the property's name when there is one.</summary>
    private RawJson Sample(JsonElement schema, string? propertyName, int depth)
    {
        if (propertyName is not null && hints.TryGetValue(propertyName, out var hinted))
        {
            return hinted;
        }

        schema = document.Resolve(schema);
        switch (OpenApiOperations.TypeOf(schema))
        {
            case "object" when depth < 4:
                var properties = new List<KeyValuePair<string, RawJson>>();
                if (schema.TryGetProperty("properties", out var declared))
                {
                    foreach (var property in declared.EnumerateObject())
                    {
                        properties.Add(new(property.Name, Sample(property.Value, property.Name, depth + 1)));
                    }
                }

                return new RawObject(properties);
            case "array" when depth < 4:
                return new RawArray(schema.TryGetProperty("items", out var items) ? [Sample(items, null, depth + 1)] : []);
            case "integer":
                return RawJson.Text("1");
            case "number":
                return RawJson.Text("0.5");
            case "boolean":
                return RawJson.Text("false");
            case "string" when schema.TryGetProperty("format", out var format) && format.GetString() == "date-time":
                return RawJson.String("2099-01-01T00:00:00Z");
            case "string":
                return RawJson.String("x");
            default:
                // Untyped (a free JSON element): a string is the most common reading.
                return schema.TryGetProperty("format", out var untypedFormat) && untypedFormat.GetString() == "date-time"
                    ? RawJson.String("2099-01-01T00:00:00Z")
                    : RawJson.String("x");
        }
    }

    private static BadRequestCase Mutated(Operation operation, string path, RawJson baseBody, IReadOnlyList<(JsonPath Target, RawJson? Value)> changes, string valueName)
    {
        var body = baseBody;
        foreach (var (target, value) in changes)
        {
            body = target.Replace(body, value);
        }

        var description = string.Join(", ", changes.Select(c => $"{c.Target} = {(c.Value is null ? "missing" : changes.Count == 1 ? valueName : Shorten(c.Value.ToString()))}"));
        return new(operation, description, path, Encoding.UTF8.GetBytes(body.ToString()), "application/json");
    }

    private const string Boundary = "fuzzboundary";
    private const string MultipartType = "multipart/form-data; boundary=" + Boundary;
    private const string MultipartEnd = $"--{Boundary}--\r\n";

    /// <summary>The form's fields from the schema: binary ones are file parts; values from the hints, else "x".</summary>
    private List<(string Name, string Value, bool IsFile)> FormFields(JsonElement? schema)
    {
        var fields = new List<(string, string, bool)>();
        if (schema is { } s && s.TryGetProperty("properties", out var properties))
        {
            foreach (var property in properties.EnumerateObject())
            {
                var resolved = document.Resolve(property.Value);
                var isFile = resolved.TryGetProperty("format", out var format) && format.GetString() == "binary";
                var value = hints.TryGetValue(property.Name, out var hinted) && hinted is RawToken token && token.Json.StartsWith('"')
                    ? JsonSerializer.Deserialize<string>(token.Json)!
                    : "x";
                fields.Add((property.Name, value, isFile));
            }
        }

        return fields;
    }

    private static string Part(string name, string content, bool isFile) =>
        $"--{Boundary}\r\nContent-Disposition: form-data; name=\"{name}\"{(isFile ? "; filename=\"data.jsonl\"" : "")}\r\n\r\n{content}\r\n";

    private static string Form(IEnumerable<(string Name, string Value, bool IsFile)> fields) =>
        string.Concat(fields.Select(f => Part(f.Name, f.Value, f.IsFile))) + MultipartEnd;

    private IEnumerable<BadRequestCase> MultipartCases(Operation operation, string path)
    {
        var fields = FormFields(operation.BodySchema);
        var valid = Form(fields);
        var bodies = new List<(string Name, string Body, string ContentType)>
        {
            ("multipart: no parts", MultipartEnd, MultipartType),
            ("multipart: empty", "", MultipartType),
            ("multipart: garbage", "not multipart at all", MultipartType),
            ("multipart: truncated", valid[..(valid.Length / 2)], MultipartType),
            ("multipart: no closing boundary", valid[..^MultipartEnd.Length], MultipartType),
            ("multipart: bad part headers", $"--{Boundary}\r\nContent-Disposition\r\n\r\nx\r\n" + MultipartEnd, MultipartType),
            ("multipart: huge header", $"--{Boundary}\r\nX-Big: {new string('h', 100_000)}\r\n\r\nx\r\n" + MultipartEnd, MultipartType),
            ("multipart: path traversal filename", valid.Replace("data.jsonl", "../../../../etc/passwd", StringComparison.Ordinal), MultipartType),
            ("multipart: wrong boundary", valid, "multipart/form-data; boundary=other"),
            ("multipart: empty boundary", valid, "multipart/form-data; boundary=\"\""),
            ("multipart: overlong boundary", valid, "multipart/form-data; boundary=" + new string('b', 200)),
            ("multipart: json", "{}", "application/json"),
        };
        foreach (var field in fields)
        {
            bodies.Add(($"multipart: {field.Name} missing", Form(fields.Where(f => f != field)), MultipartType));
            bodies.Add(($"multipart: {field.Name} twice", Form([.. fields, field]), MultipartType));
            foreach (var (name, value) in new[] { ("empty", ""), ("NUL", "\0"), ("huge", new string('p', 200_000)), ("$gt", "{\"$gt\":\"\"}"), ("lone surrogate", "\ud800") })
            {
                bodies.Add(($"multipart: {field.Name} {name}", Form(fields.Select(f => f == field ? f with { Value = value } : f)), MultipartType));
            }
        }

        return bodies.Select(b => new BadRequestCase(operation, b.Name, path, Encoding.UTF8.GetBytes(b.Body), b.ContentType));
    }

    /// <summary>The path with every parameter filled from the hints (or "x"), and <paramref name="name"/> set to <paramref name="value"/>.</summary>
    private string PathWith(Operation operation, string? name, string? value)
    {
        var path = operation.PathTemplate;
        var query = new List<string>();
        foreach (var parameter in operation.Parameters)
        {
            var filled = parameter.Name == name ? value! : PlausibleParameter(parameter);
            switch (parameter.In)
            {
                case "path":
                    path = path.Replace($"{{{parameter.Name}}}", filled, StringComparison.Ordinal)
                        .Replace($"{{**{parameter.Name}}}", filled, StringComparison.Ordinal);
                    break;
                case "query" when parameter.Name == name:
                    query.Add($"{parameter.Name}={filled}");
                    break;
            }
        }

        return query.Count == 0 ? path : $"{path}?{string.Join('&', query)}";
    }

    private string PlausibleParameter(OperationParameter parameter) =>
        hints.TryGetValue(parameter.Name, out var hinted) && hinted is RawToken token
            ? token.Json.Trim('"')
            : OpenApiOperations.TypeOf(parameter.Schema) == "integer" ? "1" : "x";

    private static IEnumerable<BadRequestCase> Bounded(List<BadRequestCase> cases, Random random, int max) =>
        cases.Count <= max ? cases : cases.OrderBy(_ => random.Next()).Take(max);

    private static string Shorten(string text) => text.Length <= 40 ? text : $"{text[..20]}…({text.Length} chars)";

    private static string SnakeCase(string name) => JsonNamingPolicy.SnakeCaseLower.ConvertName(name);

    /// <summary>FNV-1a: string.GetHashCode differs per process, and the cases must not.</summary>
    private static int StableHash(string text)
    {
        var hash = 2166136261;
        foreach (var c in text)
        {
            hash = (hash ^ c) * 16777619;
        }

        return unchecked((int)hash);
    }
}
