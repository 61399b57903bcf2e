using System.Collections;
using System.Reflection;
using LiteDB;

namespace LLMTune.Platform.Storage.LiteDb;

/// <summary>
/// Builds LiteDB's entity mappers for a document type and every type it contains, once, before the type is used.
/// LiteDB (5.0.x) publishes a type's mapper before filling in its members, so a query racing the first use of a type
/// fails with "Member X not found on BsonMapper" (seen as a 500 when requests arrive together on a fresh store).
/// </summary>
internal static class LiteDbMapperWarmUp
{
    private static readonly MethodInfo EntityMethod = typeof(BsonMapper).GetMethod(nameof(BsonMapper.Entity))!;

    /// <summary>Callers serialise calls per mapper; <paramref name="prepared"/> remembers the types already built.</summary>
    public static void Prepare(BsonMapper mapper, Type type, HashSet<Type> prepared)
    {
        var element = ElementType(type);
        if (!IsEntity(element) || !prepared.Add(element))
        {
            return;
        }

        // Entity<T>() fetches (and so builds, completely, on this thread) the type's mapper.
        EntityMethod.MakeGenericMethod(element).Invoke(mapper, null);
        const BindingFlags instance = BindingFlags.Public | BindingFlags.Instance;
        foreach (var property in element.GetProperties(instance).Where(p => p.GetIndexParameters().Length == 0))
        {
            Prepare(mapper, property.PropertyType, prepared);
        }

        foreach (var field in element.GetFields(instance))
        {
            Prepare(mapper, field.FieldType, prepared);
        }
    }

    /// <summary>The type a member holds values of: the item of a list or array, the value of a dictionary, T of T?.</summary>
    private static Type ElementType(Type type)
    {
        for (var depth = 0; depth < 8; depth++)
        {
            var next = Nullable.GetUnderlyingType(type)
                ?? (type.IsArray ? type.GetElementType() : null)
                ?? DictionaryValueType(type)
                ?? EnumerableItemType(type);
            if (next is null)
            {
                return type;
            }

            type = next;
        }

        return type;
    }

    private static Type? DictionaryValueType(Type type) =>
        type.GetInterfaces().Append(type).FirstOrDefault(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IDictionary<,>))
            ?.GetGenericArguments()[1];

    private static Type? EnumerableItemType(Type type) =>
        type == typeof(string) || !typeof(IEnumerable).IsAssignableFrom(type)
            ? null
            : type.GetInterfaces().Append(type).FirstOrDefault(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IEnumerable<>))
                ?.GetGenericArguments()[0];

    /// <summary>Classes and structs LiteDB maps member by member (not values it stores directly, nor abstract types).</summary>
    private static bool IsEntity(Type type) =>
        !type.IsPrimitive && !type.IsEnum && !type.IsAbstract && !type.IsInterface && !type.IsGenericTypeDefinition
        && type != typeof(string) && type != typeof(decimal) && type != typeof(object)
        && !typeof(BsonValue).IsAssignableFrom(type)
        && type.Namespace?.StartsWith("System", StringComparison.Ordinal) != true;
}
