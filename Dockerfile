# One image for every target (DESIGN.md "One binary, many targets"); the command picks the modules.
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY . .
RUN dotnet publish host/LLMTune.Host -c Release -o /app

FROM mcr.microsoft.com/dotnet/aspnet:10.0
WORKDIR /app
COPY --from=build /app .
# Embedded store and artifacts live under /app/data in single-process mode; mount a volume there.
VOLUME /app/data
EXPOSE 8080
ENTRYPOINT ["dotnet", "llmtune.dll"]
CMD ["serve", "--target", "all"]
