using System.Linq.Expressions;
using LLMTune.Platform.Storage.Mongo;
using MongoDB.Bson;
using MongoDB.Bson.Serialization;
using MongoDB.Driver;
using FindOptions = LLMTune.Platform.Storage.FindOptions<LLMTune.Platform.Tests.Storage.TestJob>;

namespace LLMTune.Platform.Tests.Storage;

/// <summary>
/// What the MongoDB store sends, checked without a server: the contract suite covers behaviour where a
/// MongoDB is reachable, these make sure the translation is right everywhere.
/// </summary>
public sealed class MongoTranslationTests
{
    private static readonly DateTime Cutoff = new(2025, 11, 1, 0, 0, 0, DateTimeKind.Utc);

    static MongoTranslationTests() => MongoMapping.EnsureRegistered();

    private static RenderArgs<TestJob> Args => new(BsonSerializer.LookupSerializer<TestJob>(), BsonSerializer.SerializerRegistry);

    private static string Filter(Expression<Func<TestJob, bool>> filter) =>
        MongoDocumentCollection<TestJob>.ToFilter(filter).Render(Args).ToJson();

    [Fact]
    public void Filters_translate_to_the_expected_queries()
    {
        var wanted = new[] { "a", "b" };
        var statuses = new List<TestJobStatus> { TestJobStatus.Queued, TestJobStatus.Failed };

        Assert.Equal("""{ "Status" : "Running" }""", Filter(x => x.Status == TestJobStatus.Running));
        Assert.Equal("""{ "_id" : "j1" }""", Filter(x => x.Id == "j1"));
        Assert.Equal("""{ "CreatedAt" : { "$gt" : { "$date" : "2025-11-01T00:00:00Z" } } }""", Filter(x => x.CreatedAt > Cutoff));
        Assert.Equal("""{ "_id" : { "$in" : ["a", "b"] } }""", Filter(x => wanted.Contains(x.Id)));
        Assert.Equal("""{ "Status" : { "$in" : ["Queued", "Failed"] } }""", Filter(x => statuses.Contains(x.Status)));
        Assert.Equal("""{ "Tags" : "gpu" }""", Filter(x => x.Tags.Contains("gpu")));
        Assert.Equal("""{ "Owner" : null }""", Filter(x => x.Owner == null));
        Assert.Equal("""{ "Stats.Tokens" : 0 }""", Filter(x => x.Stats.Tokens == 0));
        Assert.Equal("""{ "$or" : [{ "Priority" : 1 }, { "Name" : "G" }] }""", Filter(x => x.Priority == 1 || x.Name == "G"));
    }

    [Fact]
    public void Sort_keys_keep_their_order_and_direction()
    {
        var sort = MongoDocumentCollection<TestJob>.ToSort(FindOptions.OrderByDescending(x => x.Priority).ThenBy(x => x.CreatedAt).ThenBy(x => x.Id))!;

        Assert.Equal("""{ "Priority" : -1, "CreatedAt" : 1, "_id" : 1 }""", sort.Render(Args).ToJson());
        Assert.Null(MongoDocumentCollection<TestJob>.ToSort(FindOptions.First(3)));
    }

    [Fact]
    public void Increment_also_bumps_the_version()
    {
        var update = MongoDocumentCollection<TestJob>.IncrementUpdate(x => x.Stats.Tokens, 5);
        var inc = update.Render(Args).AsBsonDocument["$inc"].AsBsonDocument;

        Assert.Equal(["Stats.Tokens", "Version"], inc.Names);
        Assert.Equal(new BsonInt64(5), inc["Stats.Tokens"]);
        Assert.Equal(new BsonInt64(1), inc["Version"]);
    }

    [Fact]
    public void Documents_map_id_enums_dates_and_decimals_like_the_embedded_store()
    {
        var job = new TestJob
        {
            Id = "job_1",
            Status = TestJobStatus.Failed,
            Credits = 1.25m,
            CreatedAt = new DateTime(2025, 11, 1, 15, 23, 54, 123, DateTimeKind.Utc).AddTicks(42),
        };

        var bson = job.ToBsonDocument();
        var back = BsonSerializer.Deserialize<TestJob>(bson.Add("RemovedField", 1));

        Assert.Equal("job_1", bson["_id"].AsString);
        Assert.False(bson.Contains("Id"));
        Assert.Equal("Failed", bson["Status"].AsString);
        Assert.Equal(BsonType.Decimal128, bson["Credits"].BsonType);
        Assert.Equal(BsonNull.Value, bson["Owner"]);
        Assert.Equal(1.25m, back.Credits);
        Assert.Equal(new DateTime(2025, 11, 1, 15, 23, 54, 123, DateTimeKind.Utc), back.CreatedAt);
        Assert.Equal(DateTimeKind.Utc, back.CreatedAt.Kind);
    }
}
