using System.Collections;
using System.ComponentModel;
using System.Reflection;
using System.Text.Json;
using LLMTune.Host;
using LLMTune.Host.Commands;
using LLMTune.Platform;
using LLMTune.Platform.Storage;

namespace LLMTune.IntegrationTests.Deployment;

/// <summary>
/// Answers whether an environment variable a manifest sets is a setting the host reads: <c>Section__Key</c> resolved
/// against the options classes (every type with a <c>const string Section</c> in the platform and the modules'
/// assemblies, walked property by property, dictionaries taking any key), the host's appsettings.json, the connection
/// strings the platform reads, and the few process variables the host honours. A value given literally must convert
/// to the property's type (so <c>ForcePathStyle: "yes"</c> fails here, not at start-up).
/// </summary>
internal sealed class ConfigurationKeys
{
    private readonly List<(string[] Section, Type Options)> _options;
    private readonly HashSet<string> _appSettingsKeys;

    /// <summary>Read by the host or its libraries from the environment, not from an options class.</summary>
    public static readonly IReadOnlySet<string> ProcessVariables = new HashSet<string>(StringComparer.Ordinal)
    {
        ServiceDefaults.OtlpEndpointVariable, // honoured by the platform and the OpenTelemetry exporter
        ServeCommand.TargetVariable,
    };

    /// <summary>Names under <c>ConnectionStrings</c> the platform reads (GetConnectionString).</summary>
    public static readonly IReadOnlySet<string> ConnectionStrings = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
    {
        StorageOptions.MongoConnectionStringName,
        "RabbitMq", // platform/LLMTune.Platform/Bus/BusSetup.cs
    };

    public ConfigurationKeys()
    {
        var assemblies = LLMTuneHost.Modules().Select(m => m.GetType().Assembly)
            .Append(typeof(ServiceDefaults).Assembly)
            .Distinct();
        _options = assemblies.SelectMany(a => a.GetTypes())
            .Select(t => (Type: t, Field: t.GetField("Section", BindingFlags.Public | BindingFlags.Static)))
            .Where(x => x.Field is { IsLiteral: true } && x.Field.FieldType == typeof(string))
            .Select(x => (((string)x.Field!.GetRawConstantValue()!).Split(':'), x.Type))
            .ToList();
        using var appSettings = JsonDocument.Parse(DeploymentFiles.Read("host/LLMTune.Host/appsettings.json"));
        _appSettingsKeys = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        Flatten(appSettings.RootElement, "", _appSettingsKeys);
    }

    public IReadOnlyList<string> OptionSections => _options.Select(o => string.Join(':', o.Section)).ToList();

    /// <summary>Null when <paramref name="variable"/> is a real setting (and <paramref name="value"/>, if literal, fits it); else why not.</summary>
    public string? Problem(string variable, string? value)
    {
        if (ProcessVariables.Contains(variable))
        {
            return null;
        }

        var path = variable.Split("__");
        if (path.Any(string.IsNullOrEmpty))
        {
            return $"{variable}: not a Section__Key name";
        }

        if (path.Length == 2 && path[0].Equals("ConnectionStrings", StringComparison.OrdinalIgnoreCase))
        {
            return ConnectionStrings.Contains(path[1]) ? null : $"{variable}: the platform reads no connection string '{path[1]}'";
        }

        var literal = value is null || value.Contains("$(", StringComparison.Ordinal) || value.Contains("${", StringComparison.Ordinal) ? null : value;
        foreach (var (section, type) in _options.Where(o => o.Section.Length <= path.Length && o.Section.SequenceEqual(path[..o.Section.Length], StringComparer.OrdinalIgnoreCase)))
        {
            var problem = Walk(type, path, section.Length, literal);
            if (problem is null)
            {
                return null;
            }

            if (!problem.StartsWith("no property", StringComparison.Ordinal))
            {
                return $"{variable}: {problem}";
            }
        }

        if (_appSettingsKeys.Contains(string.Join(':', path)))
        {
            return null;
        }

        return $"{variable}: names no option (sections: {string.Join(", ", OptionSections.Order())}) and no key of appsettings.json";
    }

    private static string? Walk(Type type, string[] path, int index, string? literal)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (index == path.Length)
        {
            var converter = TypeDescriptor.GetConverter(type);
            if (type != typeof(string) && !converter.CanConvertFrom(typeof(string)))
            {
                return $"names the section {type.Name}, not a value";
            }

            if (literal is null || literal.Length == 0)
            {
                return null;
            }

            try
            {
                converter.ConvertFromInvariantString(literal);
                return null;
            }
            catch (Exception e) when (e is FormatException or NotSupportedException or ArgumentException || e.InnerException is FormatException)
            {
                return $"'{literal}' is not a {type.Name}";
            }
        }

        var dictionary = type.GetInterfaces().Append(type)
            .FirstOrDefault(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IDictionary<,>) && i.GetGenericArguments()[0] == typeof(string));
        if (dictionary is not null)
        {
            return Walk(dictionary.GetGenericArguments()[1], path, index + 1, literal);
        }

        if (type != typeof(string) && typeof(IEnumerable).IsAssignableFrom(type))
        {
            var element = type.IsArray ? type.GetElementType()! : type.GetGenericArguments().Single();
            return int.TryParse(path[index], out _) ? Walk(element, path, index + 1, literal) : $"'{path[index]}' is not a list index";
        }

        var property = type.GetProperty(path[index], BindingFlags.Public | BindingFlags.Instance | BindingFlags.IgnoreCase);
        return property is null
            ? $"no property '{path[index]}' on {type.Name}"
            : Walk(property.PropertyType, path, index + 1, literal);
    }

    private static void Flatten(JsonElement element, string prefix, HashSet<string> keys)
    {
        if (element.ValueKind == JsonValueKind.Object)
        {
            foreach (var property in element.EnumerateObject())
            {
                Flatten(property.Value, prefix.Length == 0 ? property.Name : $"{prefix}:{property.Name}", keys);
            }
        }
        else if (element.ValueKind == JsonValueKind.Array)
        {
            var i = 0;
            foreach (var item in element.EnumerateArray())
            {
                Flatten(item, $"{prefix}:{i++}", keys);
            }
        }
        else
        {
            keys.Add(prefix);
        }
    }
}
