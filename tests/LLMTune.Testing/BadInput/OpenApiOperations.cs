using System.Text.Json;

namespace LLMTune.Testing.BadInput;

/// <summary>One parameter of an operation (path or query) as the OpenAPI document declares it.</summary>
public sealed record OperationParameter(string Name, string In, JsonElement Schema);

/// <summary>One operation of the OpenAPI document: method, path template, parameters and the request body it declares.</summary>
public sealed record Operation(
    string Method,
    string PathTemplate,
    IReadOnlyList<OperationParameter> Parameters,
    string? BodyContentType,
    JsonElement? BodySchema)
{
    public override string ToString() => $"{Method} {PathTemplate}";
}

/// <summary>Reads the operations out of an OpenAPI 3 document and resolves its schema references.</summary>
public sealed class OpenApiOperations(JsonElement document)
{
    private static readonly string[] Methods = ["get", "put", "post", "delete", "patch"];

    public IReadOnlyList<Operation> All()
    {
        var operations = new List<Operation>();
        foreach (var path in document.GetProperty("paths").EnumerateObject())
        {
            foreach (var method in Methods)
            {
                if (!path.Value.TryGetProperty(method, out var operation))
                {
                    continue;
                }

                var parameters = new List<OperationParameter>();
                foreach (var source in new[] { path.Value, operation })
                {
                    if (source.TryGetProperty("parameters", out var declared))
                    {
                        parameters.AddRange(declared.EnumerateArray().Select(p => new OperationParameter(
                            p.GetProperty("name").GetString()!,
                            p.GetProperty("in").GetString()!,
                            p.TryGetProperty("schema", out var schema) ? Resolve(schema) : default)));
                    }
                }

                string? contentType = null;
                JsonElement? bodySchema = null;
                if (operation.TryGetProperty("requestBody", out var body) && body.TryGetProperty("content", out var content))
                {
                    var first = content.EnumerateObject().FirstOrDefault();
                    contentType = first.Name;
                    bodySchema = first.Value.ValueKind == JsonValueKind.Object && first.Value.TryGetProperty("schema", out var schema)
                        ? Resolve(schema)
                        : null;
                }

                operations.Add(new Operation(method.ToUpperInvariant(), path.Name, parameters, contentType, bodySchema));
            }
        }

        return operations;
    }

    /// <summary>Follows <c>$ref</c> and picks the non-null branch of <c>oneOf</c>/<c>anyOf</c> (nullable properties).</summary>
    public JsonElement Resolve(JsonElement schema)
    {
        for (var hops = 0; hops < 32; hops++)
        {
            if (schema.ValueKind != JsonValueKind.Object)
            {
                return schema;
            }

            if (schema.TryGetProperty("$ref", out var reference))
            {
                schema = Lookup(reference.GetString()!);
                continue;
            }

            var alternatives = schema.TryGetProperty("oneOf", out var oneOf) ? oneOf
                : schema.TryGetProperty("anyOf", out var anyOf) ? anyOf
                : default;
            if (alternatives.ValueKind == JsonValueKind.Array)
            {
                var nonNull = alternatives.EnumerateArray().FirstOrDefault(a => !(a.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String && t.GetString() == "null"));
                if (nonNull.ValueKind == JsonValueKind.Object)
                {
                    schema = nonNull;
                    continue;
                }
            }

            return schema;
        }

        throw new InvalidOperationException("Schema references loop.");
    }

    /// <summary>The schema's main type, ignoring "null" (e.g. <c>["null", "integer", "string"]</c> is an integer).</summary>
    public static string? TypeOf(JsonElement schema)
    {
        if (schema.ValueKind != JsonValueKind.Object || !schema.TryGetProperty("type", out var type))
        {
            return schema.ValueKind == JsonValueKind.Object && schema.TryGetProperty("properties", out _) ? "object" : null;
        }

        return type.ValueKind switch
        {
            JsonValueKind.String => type.GetString(),
            JsonValueKind.Array => type.EnumerateArray().Select(t => t.GetString()).FirstOrDefault(t => t is not "null"),
            _ => null,
        };
    }

    private JsonElement Lookup(string reference)
    {
        const string prefix = "#/";
        if (!reference.StartsWith(prefix, StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"Only local references are supported: {reference}");
        }

        var node = document;
        foreach (var part in reference[prefix.Length..].Split('/'))
        {
            node = node.GetProperty(part.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal));
        }

        return node;
    }
}
