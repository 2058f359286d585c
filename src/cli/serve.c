/* serve.c - `stylenet serve --model M [--port 8080] [--threads N]`: the HTTP service (serve/server.h). */
#include <getopt.h>
#include <malloc.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "core/error.h"
#include "classifier/classifier.h"
#include "serve/server.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: stylenet serve --model FILE [options]\n"
            "HTTP service: POST /predict (an image as the body or a multipart field 'image'; ?tta=1, ?top=K),\n"
            "GET / (a page to try photos), /healthz, /model, /metrics (Prometheus).  Stops on SIGINT/SIGTERM.\n"
            "  --model FILE          stylenet model, TFLite MobileNetV2, or state dict (.pth/.safetensors)\n"
            "  --labels FILE         class names, one per line (TFLite and plain state dicts)\n"
            "  --arch NAME           architecture of a plain state dict\n"
            "  --name NAME           model name in answers (default: the file's name)\n"
            "  --host ADDR           address to listen on (127.0.0.1: this machine only; 0.0.0.0: all)\n"
            "  --port N              port (8080; 0: any free port, printed)\n"
            "  --threads N           inference workers, one core each (default: all cores)\n"
            "  --queue N             requests that may wait for a worker before 503 (16)\n"
            "  --max-body BYTES      largest request body, suffix K or M allowed (8M)\n"
            "  --max-buffered BYTES  request bodies held at once, all connections (64M)\n"
            "  --max-pixels N        largest image, width x height (25000000)\n"
            "  --max-connections N   open connections; more are closed at once (64)\n"
            "  --timeout S           seconds a connection may stay idle (10)\n"
            "  --tta                 test-time augmentation unless the request says ?tta=0\n"
            "  --tta-views N         augmented views TTA adds (4)\n"
            "  --top K               classes in an answer unless the request says ?top=K (5)\n"
            "  --quiet               no access log on stderr\n");
    fputs(CLI_PHOTO_FORMATS, f);
}

/* "8M", "512K", "1048576" -> bytes; 0 if malformed */
static size_t parse_bytes(const char *s) {
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s) return 0;
    if (*end == 'K' || *end == 'k') v <<= 10, end++;
    else if (*end == 'M' || *end == 'm') v <<= 20, end++;
    else if (*end == 'G' || *end == 'g') v <<= 30, end++;
    if (*end == 'B' || *end == 'b') end++;
    return *end ? 0 : (size_t)v;
}

int cmd_serve(int argc, char **argv) {
    enum { O_NAME = 256, O_HOST, O_PORT, O_THREADS, O_QUEUE, O_MAXBODY, O_MAXBUF, O_MAXPIX, O_MAXCONN, O_TIMEOUT,
           O_TTA, O_VIEWS, O_TOP, O_QUIET };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},          {"labels", required_argument, 0, 'l'},
        {"arch", required_argument, 0, 'a'},           {"name", required_argument, 0, O_NAME},
        {"host", required_argument, 0, O_HOST},        {"port", required_argument, 0, O_PORT},
        {"threads", required_argument, 0, O_THREADS},  {"queue", required_argument, 0, O_QUEUE},
        {"max-body", required_argument, 0, O_MAXBODY}, {"max-buffered", required_argument, 0, O_MAXBUF},
        {"max-pixels", required_argument, 0, O_MAXPIX}, {"max-connections", required_argument, 0, O_MAXCONN},
        {"timeout", required_argument, 0, O_TIMEOUT},  {"tta", no_argument, 0, O_TTA},
        {"tta-views", required_argument, 0, O_VIEWS},  {"top", required_argument, 0, O_TOP},
        {"quiet", no_argument, 0, O_QUIET},            {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    serve_opts so = serve_defaults();
    so.threads = omp_get_num_procs();
    classifier_load_opts lo = {.infer_only = true}; /* the workers share the frozen inference path */
    const char *model_path = NULL;
    int c, bad = 0, max_pixels = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:l:a:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'l': lo.labels = optarg; break;
        case 'a': lo.arch = optarg; break;
        case O_NAME: so.model_name = optarg; break;
        case O_HOST: so.host = optarg; break;
        case O_PORT: bad = cli_int("--port", optarg, 0, 65535, &so.port); break;
        case O_THREADS: bad = cli_int("--threads", optarg, 1, 256, &so.threads); break;
        case O_QUEUE: bad = cli_int("--queue", optarg, 0, 100000, &so.queue); break;
        case O_MAXBODY:
            if (!(so.max_body = parse_bytes(optarg))) bad = sn_error("--max-body takes a size such as 8M, not '%s'", optarg);
            break;
        case O_MAXBUF:
            if (!(so.max_buffered = parse_bytes(optarg)))
                bad = sn_error("--max-buffered takes a size such as 64M, not '%s'", optarg);
            break;
        case O_MAXPIX:
            bad = cli_int("--max-pixels", optarg, 1, 1000000000, &max_pixels);
            so.max_pixels = max_pixels;
            break;
        case O_MAXCONN: bad = cli_int("--max-connections", optarg, 1, 100000, &so.max_connections); break;
        case O_TIMEOUT: bad = cli_int("--timeout", optarg, 1, 86400, &so.timeout_s); break;
        case O_TTA: so.tta = true; break;
        case O_VIEWS: bad = cli_int("--tta-views", optarg, 1, 16, &so.tta_views); break;
        case O_TOP: bad = cli_int("--top", optarg, 1, 100000, &so.top); break;
        case O_QUIET: so.quiet = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (bad < 0) return cli_usage_error("serve", usage);
    }
    if (!model_path || optind != argc) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(so.model_name, serve_defaults().model_name)) {
        const char *slash = strrchr(model_path, '/');
        so.model_name = slash ? slash + 1 : model_path;
    }
    so.model_path = model_path;
    /* A server keeps running: large per-request buffers (decoded photos) go back to the system when
     * freed instead of staying in the heap as the training verbs want (main.c). */
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    mallopt(M_TRIM_THRESHOLD, 8 << 20);
    classifier *m = classifier_load(model_path, &lo);
    if (!m) return cli_fail("%s", sn_last_error());
    /* SIGINT/SIGTERM are taken by sigwait below; blocked before the server's threads start so
     * that none of them is interrupted.  A client that goes away must not kill the process. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    server *s = server_start(m, &so);
    if (!s) {
        classifier_free(m);
        return cli_fail("%s", sn_last_error());
    }
    const char *h = so.host;
    bool v6 = strchr(h, ':') != NULL;
    printf("stylenet serve: %s (%s, %d classes, %dx%d) on http://%s%s%s:%d/ with %d worker%s\n", so.model_name,
           m->arch, m->n_classes, m->size, m->size, v6 ? "[" : "", h, v6 ? "]" : "", server_port(s), so.threads,
           so.threads > 1 ? "s" : "");
    printf("limits: body %zu bytes, %ld pixels, %d connections idle at most %d s, %d requests waiting\n", so.max_body,
           so.max_pixels, so.max_connections, so.timeout_s, so.queue);
    fflush(stdout);
    int sig = 0;
    sigwait(&stop, &sig);
    printf("stylenet serve: %s, stopping\n", sig == SIGINT ? "interrupted" : "terminated");
    fflush(stdout);
    server_stop(s);
    classifier_free(m);
    return 0;
}
