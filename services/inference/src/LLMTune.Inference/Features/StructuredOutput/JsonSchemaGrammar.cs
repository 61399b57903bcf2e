using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using LLMTune.Platform.Errors;

namespace LLMTune.Inference.Features.StructuredOutput;

/// <summary>
/// Turns a JSON schema into a GBNF grammar for llama.cpp's grammar sampler, so a local model can only write JSON that
/// matches it. Every length in the grammar is bounded (strings, arrays, digits, whitespace, nesting of free-form JSON),
/// so a constrained generation always ends. Keywords it cannot enforce are refused with a 400 naming them, rather than
/// producing output that might not match.
/// </summary>
/// <remarks>
/// Supported: <c>type</c> (one or a list), <c>properties</c>, <c>required</c>, <c>additionalProperties</c> (extra keys
/// are never generated), <c>enum</c>, <c>const</c>, <c>items</c>, <c>minItems</c>/<c>maxItems</c>,
/// <c>minLength</c>/<c>maxLength</c>, <c>uniqueItems: false</c>, <c>anyOf</c>, <c>oneOf</c> whose alternatives no value
/// can match twice (different types, different constants, or objects told apart by a required constant property),
/// <c>$ref</c> to <c>#/$defs/…</c> or <c>#/definitions/…</c>, and the string formats <c>date</c>, <c>time</c>,
/// <c>date-time</c>, <c>uuid</c>. A schema without <c>type</c> takes the type its keywords apply to. Properties are
/// written in the order the schema declares them.
/// </remarks>
public sealed class JsonSchemaGrammar
{
    /// <summary>Longest string written when the schema sets no <c>maxLength</c>.</summary>
    public const int DefaultMaxStringLength = 256;

    /// <summary>Most array items written when the schema sets no <c>maxItems</c>.</summary>
    public const int DefaultMaxItems = 64;

    /// <summary>Largest <c>maxLength</c>/<c>maxItems</c> accepted (each unit is a grammar rule in llama.cpp).</summary>
    public const int MaxRepetition = 1024;

    /// <summary>How deep free-form JSON (json_object, untyped values) may nest.</summary>
    public const int FreeFormDepth = 4;

    private const int MaxSchemaDepth = 32;
    private const int MaxRules = 2000;

    private static readonly HashSet<string> Annotations =
    [
        "title", "description", "$schema", "$id", "$comment", "examples", "default", "deprecated", "readOnly", "writeOnly", "$defs", "definitions",
    ];

    private static readonly string[] Primitives =
    [
        """ws ::= [ \n]?""",
        // \u escapes of UTF-16 surrogates are left out: one would not be a character (or two would count as one).
        """json-char ::= [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" ([0-9a-cA-CefEF] [0-9a-fA-F]{3} | [dD] [0-7] [0-9a-fA-F]{2}))""",
        """json-int ::= "-"? ("0" | [1-9] [0-9]{0,15})""",
        """json-number ::= json-int ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,3})?""",
        """json-boolean ::= "true" | "false" """,
        """json-null ::= "null" """,
    ];

    private JsonElement _root;
    private string _param;
    private readonly Dictionary<string, string> _rules = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _rulesByBody = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _refRules = new(StringComparer.Ordinal);
    private readonly HashSet<string> _usedPrimitives = [];

    private JsonSchemaGrammar(JsonElement root, string param)
    {
        _root = root;
        _param = param;
        _usedPrimitives.Add("ws");
    }

    /// <summary>The grammar (root rule <c>root</c>) for values matching <paramref name="schema"/>.</summary>
    /// <param name="param">Where the schema was sent, for error messages (e.g. <c>response_format.json_schema.schema</c>).</param>
    /// <exception cref="ApiException">A keyword or shape the grammar cannot enforce (400 naming it).</exception>
    public static string FromSchema(JsonElement schema, string param)
    {
        var builder = new JsonSchemaGrammar(schema, param);
        var root = builder.Visit(schema, param, 0);
        return builder.Render(root);
    }

    /// <summary>
    /// One to <paramref name="maxCalls"/> calls, one JSON object a line: <c>{"name": "…", "arguments": {…}}</c>, the
    /// arguments decoded under that function's parameters schema (an empty object when it has none).
    /// </summary>
    public static string ToolCalls(IReadOnlyList<(string Name, JsonElement? Parameters, string Param)> functions, int maxCalls)
    {
        var builder = new JsonSchemaGrammar(default, "tools");
        var calls = new List<string>();
        foreach (var (name, parameters, param) in functions)
        {
            builder._root = parameters ?? default;
            builder._param = param;
            builder._refRules.Clear();
            var arguments = parameters is { } schema ? builder.Visit(schema, param, 0) : "\"{\" ws \"}\"";
            calls.Add($"\"{{\\\"name\\\": \" {Quote(JsonSerializer.Serialize(name, Compact))} \", \\\"arguments\\\": \" {arguments} \"}}\"");
        }

        var call = builder.AddRule("tool-call", string.Join(" | ", calls));
        return builder.Render(maxCalls > 1 ? $"{call} (\"\\n\" {call}){{0,{maxCalls - 1}}}" : call);
    }

    /// <summary>Any JSON object (OpenAI's <c>json_object</c> mode), nested at most <see cref="FreeFormDepth"/> deep.</summary>
    public static string AnyObject()
    {
        var builder = new JsonSchemaGrammar(default, "response_format");
        return builder.Render(builder.FreeFormObject(FreeFormDepth));
    }

    private string Render(string rootExpression)
    {
        var grammar = new StringBuilder();
        grammar.Append("root ::= ").Append(rootExpression).Append('\n');
        foreach (var (name, body) in _rules)
        {
            grammar.Append(name).Append(" ::= ").Append(body).Append('\n');
        }

        foreach (var primitive in Primitives)
        {
            var name = primitive[..primitive.IndexOf(' ')];
            if (_usedPrimitives.Contains(name))
            {
                grammar.Append(primitive.TrimEnd()).Append('\n');
            }
        }

        return grammar.ToString();
    }

    /// <summary>The grammar expression for one schema (a rule name or an inline expression).</summary>
    private string Visit(JsonElement schema, string path, int depth)
    {
        if (depth > MaxSchemaDepth)
        {
            throw ApiException.Invalid(_param, $"The schema nests deeper than {MaxSchemaDepth} levels.");
        }

        if (schema.ValueKind == JsonValueKind.True)
        {
            return FreeFormValue(FreeFormDepth);
        }

        if (schema.ValueKind != JsonValueKind.Object)
        {
            throw ApiException.Invalid(_param, $"{path} must be a schema object.");
        }

        var known = new HashSet<string>(StringComparer.Ordinal);
        foreach (var property in schema.EnumerateObject())
        {
            if (!Annotations.Contains(property.Name) && !IsHandled(property.Name))
            {
                throw ApiException.Unsupported(_param, $"The JSON schema keyword '{property.Name}' (at {path}) is not supported for local models.");
            }

            known.Add(property.Name);
        }

        if (schema.TryGetProperty("$ref", out var reference))
        {
            if (known.Count(k => !Annotations.Contains(k)) > 1)
            {
                throw ApiException.Unsupported(_param, $"$ref beside other keywords (at {path}) is not supported for local models.");
            }

            return Ref(reference, path, depth);
        }

        foreach (var combinator in (string[])["anyOf", "oneOf"])
        {
            if (schema.TryGetProperty(combinator, out var options))
            {
                if (options.ValueKind != JsonValueKind.Array || options.GetArrayLength() == 0)
                {
                    throw ApiException.Invalid(_param, $"{path}.{combinator} must be a non-empty array of schemas.");
                }

                if (known.FirstOrDefault(k => k != combinator && !Annotations.Contains(k)) is { } sibling)
                {
                    throw ApiException.Unsupported(_param, $"{combinator} beside '{sibling}' (at {path}) is not supported for local models; move '{sibling}' into each alternative.");
                }

                var alternatives = options.EnumerateArray().ToArray();
                if (combinator == "oneOf")
                {
                    CheckExclusive(alternatives, path);
                }

                return Rule(path, string.Join(" | ", alternatives.Select((option, i) => Visit(option, $"{path}.{combinator}[{i}]", depth + 1))));
            }
        }

        if (schema.TryGetProperty("const", out var constant))
        {
            return Rule(path, Literals([constant], schema, "const", known, path));
        }

        if (schema.TryGetProperty("enum", out var values))
        {
            if (values.ValueKind != JsonValueKind.Array || values.GetArrayLength() == 0)
            {
                throw ApiException.Invalid(_param, $"{path}.enum must be a non-empty array.");
            }

            return Rule(path, Literals(values.EnumerateArray().ToArray(), schema, "enum", known, path));
        }

        if (schema.TryGetProperty("format", out var format) && format.ValueKind == JsonValueKind.String
            && TypeNames(schema) is { } declared && !declared.Contains("string"))
        {
            throw ApiException.Unsupported(_param, $"format '{format.GetString()}' on a non-string type (at {path}.format) is not supported for local models.");
        }

        if (schema.TryGetProperty("uniqueItems", out var unique) && unique.ValueKind == JsonValueKind.True
            && !(schema.TryGetProperty("maxItems", out var most) && most.ValueKind == JsonValueKind.Number && most.TryGetInt32(out var m) && m <= 1))
        {
            throw ApiException.Unsupported(_param, $"uniqueItems (at {path}) is not supported for local models.");
        }

        if (!schema.TryGetProperty("type", out var type))
        {
            return InferredType(known, path) is { } inferred ? Typed(inferred, schema, path, depth) : FreeFormValue(FreeFormDepth);
        }

        if (type.ValueKind == JsonValueKind.String)
        {
            return Typed(type.GetString()!, schema, path, depth);
        }

        if (type.ValueKind == JsonValueKind.Array && type.GetArrayLength() > 0 && type.EnumerateArray().All(t => t.ValueKind == JsonValueKind.String))
        {
            return Rule(path, string.Join(" | ", type.EnumerateArray().Select(t => Typed(t.GetString()!, schema, path, depth))));
        }

        throw ApiException.Invalid(_param, $"{path}.type must be a type name or a list of them.");
    }

    private static bool IsHandled(string keyword) => keyword is "type" or "properties" or "required" or "additionalProperties" or "enum" or "const"
        or "items" or "minItems" or "maxItems" or "minLength" or "maxLength" or "anyOf" or "oneOf" or "$ref" or "format" or "uniqueItems";

    /// <summary>The type an untyped schema's keywords apply to (JSON schema ignores them on other types, so writing only that type is valid).</summary>
    private string? InferredType(HashSet<string> keywords, string path)
    {
        var typed = keywords.Select(k => (Keyword: k, Type: k switch
        {
            "properties" or "required" or "additionalProperties" => "object",
            "items" or "minItems" or "maxItems" or "uniqueItems" => "array",
            "minLength" or "maxLength" or "format" => "string",
            _ => null,
        })).Where(k => k.Type is not null).ToArray();
        var types = typed.Select(k => k.Type!).Distinct().ToArray();
        return types.Length switch
        {
            0 => null,
            1 => types[0],
            _ => throw ApiException.Unsupported(_param,
                $"A schema without type that uses {string.Join(", ", typed.Select(k => k.Keyword))} (keywords of {string.Join(" and ", types)}, at {path}) is not supported for local models; give its type."),
        };
    }

    private static HashSet<string>? TypeNames(JsonElement schema) =>
        !schema.TryGetProperty("type", out var type) ? null
        : type.ValueKind == JsonValueKind.String ? [type.GetString()!]
        : type.ValueKind == JsonValueKind.Array ? type.EnumerateArray().Where(t => t.ValueKind == JsonValueKind.String).Select(t => t.GetString()!).ToHashSet()
        : null;

    /// <summary>
    /// <c>const</c>/<c>enum</c> values as alternatives, only those of the schema's <c>type</c> when it has one; other
    /// keywords beside them would have to be checked value by value, so they are refused.
    /// </summary>
    private string Literals(JsonElement[] values, JsonElement schema, string keyword, HashSet<string> keywords, string path)
    {
        if (keywords.FirstOrDefault(k => k != keyword && k != "type" && !Annotations.Contains(k)) is { } sibling)
        {
            throw ApiException.Unsupported(_param, $"{keyword} beside '{sibling}' (at {path}) is not supported for local models.");
        }

        var types = TypeNames(schema);
        var allowed = values.Where(v => types is null || types.Overlaps(Kinds(v))).ToArray();
        if (allowed.Length == 0)
        {
            throw ApiException.Invalid(_param, $"No {keyword} value at {path} has the schema's type.");
        }

        return string.Join(" | ", allowed.Select(Literal));
    }

    /// <summary>The schema types a JSON value has (an integral number is both integer and number).</summary>
    private static string[] Kinds(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => ["string"],
        JsonValueKind.Number => value.TryGetDecimal(out var d) && d == decimal.Truncate(d) ? ["number", "integer"] : ["number"],
        JsonValueKind.True or JsonValueKind.False => ["boolean"],
        JsonValueKind.Null => ["null"],
        JsonValueKind.Object => ["object"],
        _ => ["array"],
    };

    /// <summary>
    /// oneOf means exactly one alternative matches; the grammar writes a value of one alternative, which is only
    /// enough when no value can match two. Alternatives count as exclusive when their value kinds differ, when both are
    /// constants with no value in common, or when both are objects with a required property whose constants differ.
    /// </summary>
    private void CheckExclusive(JsonElement[] alternatives, string path)
    {
        var shapes = alternatives.Select(a => Shape.Of(a, _root, 0)).ToArray();
        for (var i = 0; i < shapes.Length; i++)
        {
            for (var j = i + 1; j < shapes.Length; j++)
            {
                if (!shapes[i].ExcludedBy(shapes[j]))
                {
                    throw ApiException.Unsupported(_param,
                        $"oneOf whose alternatives {i} and {j} may both match a value (at {path}.oneOf) is not supported for local models: give them different types or a required property with different const values, or use anyOf.");
                }
            }
        }
    }

    /// <summary>What values a schema can match, as far as <see cref="CheckExclusive"/> needs: kinds, constants, constant required properties.</summary>
    private sealed record Shape(HashSet<string> Kinds, JsonElement[]? Constants, Dictionary<string, JsonElement[]> Discriminators)
    {
        private static readonly string[] AllKinds = ["string", "number", "boolean", "null", "object", "array"];

        public static Shape Of(JsonElement schema, JsonElement root, int depth)
        {
            if (schema.ValueKind != JsonValueKind.Object || depth > MaxSchemaDepth)
            {
                return new Shape([.. AllKinds], null, []);
            }

            if (schema.TryGetProperty("$ref", out var reference) && reference.ValueKind == JsonValueKind.String
                && reference.GetString()!.Split('/') is ["#", "$defs" or "definitions", { Length: > 0 } name] parts
                && root.ValueKind == JsonValueKind.Object && root.TryGetProperty(parts[1], out var definitions)
                && definitions.ValueKind == JsonValueKind.Object && definitions.TryGetProperty(Unescape(name), out var definition))
            {
                return Of(definition, root, depth + 1);
            }

            var constants = schema.TryGetProperty("const", out var constant) ? [constant]
                : schema.TryGetProperty("enum", out var values) && values.ValueKind == JsonValueKind.Array ? values.EnumerateArray().ToArray()
                : null;
            if (constants is not null)
            {
                return new Shape(constants.SelectMany(JsonSchemaGrammar.Kinds).Select(Widen).ToHashSet(), constants, []);
            }

            foreach (var combinator in (string[])["anyOf", "oneOf"])
            {
                if (schema.TryGetProperty(combinator, out var options) && options.ValueKind == JsonValueKind.Array)
                {
                    var parts2 = options.EnumerateArray().Select(o => Of(o, root, depth + 1)).ToArray();
                    return new Shape(parts2.SelectMany(p => p.Kinds).ToHashSet(),
                        parts2.All(p => p.Constants is not null) ? parts2.SelectMany(p => p.Constants!).ToArray() : null, []);
                }
            }

            var kinds = TypeNames(schema)?.Select(Widen).ToHashSet()
                ?? (schema.TryGetProperty("properties", out _) ? ["object"] : schema.TryGetProperty("items", out _) ? ["array"] : [.. AllKinds]);
            var discriminators = new Dictionary<string, JsonElement[]>(StringComparer.Ordinal);
            if (kinds.SetEquals(["object"]) && schema.TryGetProperty("required", out var required) && required.ValueKind == JsonValueKind.Array
                && schema.TryGetProperty("properties", out var properties) && properties.ValueKind == JsonValueKind.Object)
            {
                foreach (var property in required.EnumerateArray().Where(r => r.ValueKind == JsonValueKind.String).Select(r => r.GetString()!))
                {
                    if (properties.TryGetProperty(property, out var propertySchema) && Of(propertySchema, root, depth + 1).Constants is { } values2)
                    {
                        discriminators[property] = values2;
                    }
                }
            }

            return new Shape(kinds, null, discriminators);
        }

        // Integers are numbers: integer and number alternatives can match the same value.
        private static string Widen(string kind) => kind == "integer" ? "number" : kind;

        public bool ExcludedBy(Shape other)
        {
            if (!Kinds.Overlaps(other.Kinds))
            {
                return true;
            }

            if (Constants is { } mine && other.Constants is { } theirs)
            {
                return !mine.Any(a => theirs.Any(b => JsonElement.DeepEquals(a, b)));
            }

            return Kinds.SetEquals(["object"]) && other.Kinds.SetEquals(["object"])
                && Discriminators.Any(d => other.Discriminators.TryGetValue(d.Key, out var theirs2) && !d.Value.Any(a => theirs2.Any(b => JsonElement.DeepEquals(a, b))));
        }
    }

    private string Typed(string type, JsonElement schema, string path, int depth)
    {
        switch (type)
        {
            case "string":
                return String(schema, path);
            case "integer":
                return Primitive("json-int");
            case "number":
                return Primitive("json-number");
            case "boolean":
                return Primitive("json-boolean");
            case "null":
                return Primitive("json-null");
            case "object":
                return Object(schema, path, depth);
            case "array":
                return Array(schema, path, depth);
            default:
                throw ApiException.Invalid(_param, $"{path}.type '{type}' is not a JSON schema type.");
        }
    }

    private string String(JsonElement schema, string path)
    {
        if (schema.TryGetProperty("format", out var format))
        {
            var body = format.ValueKind == JsonValueKind.String ? format.GetString() switch
            {
                "date" => """ "\"" date "\"" """,
                "time" => """ "\"" time "\"" """,
                "date-time" => """ "\"" date "T" time "\"" """,
                "uuid" => """ "\"" [0-9a-f]{8} "-" [0-9a-f]{4} "-" [0-9a-f]{4} "-" [0-9a-f]{4} "-" [0-9a-f]{12} "\"" """,
                _ => null,
            } : null;
            if (body is null)
            {
                throw ApiException.Unsupported(_param, $"The string format {format.GetRawText()} (at {path}.format) is not supported for local models.");
            }

            if (schema.TryGetProperty("minLength", out _) || schema.TryGetProperty("maxLength", out _))
            {
                throw ApiException.Unsupported(_param, $"minLength/maxLength beside format (at {path}) is not supported for local models.");
            }

            DateTimeRules();
            return Rule(path, body.Trim());
        }

        var min = Count(schema, "minLength", path, 0);
        var max = Count(schema, "maxLength", path, Math.Max(min, DefaultMaxStringLength));
        if (max < min)
        {
            throw ApiException.Invalid(_param, $"{path}.maxLength is less than minLength.");
        }

        Primitive("json-char");
        return Rule(path, $"\"\\\"\" json-char{{{min},{max}}} \"\\\"\"");
    }

    private void DateTimeRules()
    {
        // Real dates only: years 0001–9999, each month's own days (February up to the 28th, so leap years never matter).
        AddRule("date", """([1-9] [0-9]{3} | "0" ([1-9] [0-9]{2} | "0" ([1-9] [0-9] | "0" [1-9]))) "-" """
            + """(("0" [13578] | "1" [02]) "-" ("0" [1-9] | [12] [0-9] | "3" [01]) | ("0" [469] | "11") "-" ("0" [1-9] | [12] [0-9] | "30") | "02-" ("0" [1-9] | "1" [0-9] | "2" [0-8]))""");
        AddRule("time", """([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9] ":" [0-5] [0-9] ("." [0-9]{1,6})? ("Z" | [+-] ([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9])""");
    }

    private string Object(JsonElement schema, string path, int depth)
    {
        var required = new HashSet<string>(StringComparer.Ordinal);
        if (schema.TryGetProperty("required", out var requiredList))
        {
            if (requiredList.ValueKind != JsonValueKind.Array || requiredList.EnumerateArray().Any(r => r.ValueKind != JsonValueKind.String))
            {
                throw ApiException.Invalid(_param, $"{path}.required must be a list of property names.");
            }

            required.UnionWith(requiredList.EnumerateArray().Select(r => r.GetString()!));
        }

        if (schema.TryGetProperty("additionalProperties", out var additional) && additional.ValueKind is not (JsonValueKind.True or JsonValueKind.False or JsonValueKind.Object))
        {
            throw ApiException.Invalid(_param, $"{path}.additionalProperties must be a boolean or a schema.");
        }

        if (!schema.TryGetProperty("properties", out var properties) || properties.ValueKind == JsonValueKind.Object && !properties.EnumerateObject().Any())
        {
            if (required.Count > 0)
            {
                throw ApiException.Unsupported(_param, $"required names properties that {path}.properties does not declare.");
            }

            // No declared properties: `{}` when nothing else is allowed, keys with values of the additionalProperties
            // schema when it has one, otherwise any (bounded) object.
            if (additional.ValueKind == JsonValueKind.Object)
            {
                var pair = $"{FreeFormString()} ws \":\" ws {Visit(additional, $"{path}.additionalProperties", depth + 1)}";
                return Rule(path, Sequence("\"{\"", pair, 0, 16, "\"}\""));
            }

            return additional.ValueKind == JsonValueKind.False ? "\"{\" ws \"}\"" : FreeFormObject(FreeFormDepth);
        }

        if (properties.ValueKind != JsonValueKind.Object)
        {
            throw ApiException.Invalid(_param, $"{path}.properties must be an object.");
        }

        var members = properties.EnumerateObject()
            .Select(p => (Name: p.Name, Required: required.Contains(p.Name), Pair: $"{Key(p.Name)} ws \":\" ws {Visit(p.Value, $"{path}.properties.{p.Name}", depth + 1)}"))
            .ToList();
        var missing = required.Except(members.Select(m => m.Name)).FirstOrDefault();
        if (missing is not null)
        {
            throw ApiException.Unsupported(_param, $"required names '{missing}', which {path}.properties does not declare.");
        }

        // After the first written property every later one is "," + pair (optional ones may be skipped); the first
        // written one is any optional one up to the first required.
        string Rest(int from) => string.Concat(members.Skip(from).Select(m => m.Required ? $" \",\" ws {m.Pair}" : $" (\",\" ws {m.Pair})?"));
        var firsts = new List<string>();
        for (var i = 0; i < members.Count; i++)
        {
            firsts.Add(members[i].Pair + Rest(i + 1));
            if (members[i].Required)
            {
                break;
            }
        }

        var body = string.Join(" | ", firsts);
        if (members.All(m => !m.Required))
        {
            body = $"({body})?";
        }

        return Rule(path, $"\"{{\" ws {(body.Length > 0 ? $"({body}) ws " : "")}\"}}\"");
    }

    private string Array(JsonElement schema, string path, int depth)
    {
        var item = schema.TryGetProperty("items", out var items) ? Visit(items, $"{path}.items", depth + 1) : FreeFormValue(FreeFormDepth);
        var min = Count(schema, "minItems", path, 0);
        var max = Count(schema, "maxItems", path, Math.Max(min, DefaultMaxItems));
        if (max < min)
        {
            throw ApiException.Invalid(_param, $"{path}.maxItems is less than minItems.");
        }

        return Rule(path, Sequence("\"[\"", item, min, max, "\"]\""));
    }

    /// <summary><c>open ws (item ("," ws item){…})? ws close</c> with between <paramref name="min"/> and <paramref name="max"/> items.</summary>
    private static string Sequence(string open, string item, int min, int max, string close)
    {
        if (max == 0)
        {
            return $"{open} ws {close}";
        }

        var items = $"{item} (\",\" ws {item}){{{Math.Max(min - 1, 0)},{max - 1}}}";
        return min == 0 ? $"{open} ws ({items})? ws {close}" : $"{open} ws {items} ws {close}";
    }

    private string Ref(JsonElement reference, string path, int depth)
    {
        var target = reference.ValueKind == JsonValueKind.String ? reference.GetString()! : "";
        if (_refRules.TryGetValue(target, out var existing))
        {
            return existing;
        }

        string[] parts = target.Split('/');
        if (parts is not ["#", "$defs" or "definitions", { Length: > 0 } name] || _root.ValueKind != JsonValueKind.Object
            || !_root.TryGetProperty(parts[1], out var definitions) || definitions.ValueKind != JsonValueKind.Object
            || !definitions.TryGetProperty(Unescape(name), out var definition))
        {
            throw ApiException.Unsupported(_param, $"$ref '{target}' (at {path}) must point into the schema's own $defs or definitions.");
        }

        // Named before it is expanded, so a recursive schema refers back to its rule.
        var rule = UniqueName("ref-" + name);
        _refRules[target] = rule;
        _rules[rule] = "";
        var body = Visit(definition, target, depth + 1);
        if (body == rule)
        {
            throw ApiException.Unsupported(_param, $"$ref '{target}' refers only to itself.");
        }

        _rules[rule] = body;
        return rule;
    }

    private static string Unescape(string pointer) => pointer.Replace("~1", "/").Replace("~0", "~");

    private string FreeFormValue(int depth)
    {
        Primitive("json-number");
        Primitive("json-boolean");
        Primitive("json-null");
        var primitives = $"{FreeFormString()} | json-number | json-boolean | json-null";
        if (depth == 0)
        {
            return AddRule("json-value-0", primitives);
        }

        return AddRule($"json-value-{depth}", $"{FreeFormObject(depth)} | {AddRule($"json-array-{depth}", Sequence("\"[\"", FreeFormValue(depth - 1), 0, 16, "\"]\""))} | {primitives}");
    }

    private string FreeFormObject(int depth)
    {
        var pair = $"{FreeFormString()} ws \":\" ws {FreeFormValue(depth - 1)}";
        return AddRule($"json-object-{depth}", Sequence("\"{\"", pair, 0, 16, "\"}\""));
    }

    private string FreeFormString()
    {
        Primitive("json-char");
        return AddRule("json-string", $"\"\\\"\" json-char{{0,{DefaultMaxStringLength}}} \"\\\"\"");
    }

    private string Primitive(string name)
    {
        _usedPrimitives.Add(name);
        if (name is "json-number")
        {
            _usedPrimitives.Add("json-int");
        }

        return name;
    }

    private int Count(JsonElement schema, string keyword, string path, int fallback)
    {
        if (!schema.TryGetProperty(keyword, out var value))
        {
            return fallback;
        }

        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out var count) || count < 0)
        {
            throw ApiException.Invalid(_param, $"{path}.{keyword} must be a non-negative integer.");
        }

        if (count > MaxRepetition)
        {
            throw ApiException.Unsupported(_param, $"{path}.{keyword} above {MaxRepetition} is not supported for local models.");
        }

        return count;
    }

    /// <summary>A named rule for <paramref name="body"/>, shared with any identical one.</summary>
    private string Rule(string hint, string body)
    {
        if (_rulesByBody.TryGetValue(body, out var existing))
        {
            return existing;
        }

        var name = UniqueName(hint);
        _rules[name] = body;
        _rulesByBody[body] = name;
        return name;
    }

    /// <summary>A rule with a fixed name (shared building blocks), added once.</summary>
    private string AddRule(string name, string body)
    {
        if (!_rules.ContainsKey(name))
        {
            _rules[name] = body;
        }

        return name;
    }

    private string UniqueName(string hint)
    {
        if (_rules.Count >= MaxRules)
        {
            throw ApiException.Unsupported(_param, $"The schema needs more than {MaxRules} grammar rules; simplify it.");
        }

        var cleaned = new StringBuilder();
        foreach (var c in hint)
        {
            cleaned.Append(char.IsAsciiLetterOrDigit(c) ? char.ToLowerInvariant(c) : '-');
        }

        var stem = "s-" + cleaned.ToString().Trim('-');
        if (stem.Length > 48)
        {
            stem = stem[..48];
        }

        var name = stem;
        for (var i = 2; _rules.ContainsKey(name); i++)
        {
            name = stem + "-" + i.ToString(CultureInfo.InvariantCulture);
        }

        return name;
    }

    private static readonly JsonSerializerOptions Compact = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>The compact JSON text of a value, as a GBNF string literal.</summary>
    private static string Literal(JsonElement value) => Quote(JsonSerializer.Serialize(value, Compact));

    /// <summary>A property name as its JSON string, as a GBNF string literal.</summary>
    private static string Key(string name) => Quote(JsonSerializer.Serialize(name, Compact));

    private static string Quote(string text)
    {
        var literal = new StringBuilder("\"");
        foreach (var c in text)
        {
            literal.Append(c switch
            {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                _ => c.ToString(),
            });
        }

        return literal.Append('"').ToString();
    }
}
