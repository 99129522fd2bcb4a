// hello-wasm: greets someone by name from inside the WASM sandbox.
//
// openpista runs skill.wasm as a WASI command: the arguments arrive as one JSON object on
// stdin, whatever it prints on stdout is the result, and the workspace is readable (never
// writable) at /workspace. Build: ./build.sh
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_INPUT (64 * 1024)
#define MAX_NAME 256
#define MAX_LISTED 20

// Reads a JSON string starting at *p (the opening quote) into out (UTF-8, NUL-terminated,
// cut at size - 1 bytes); leaves *p after the closing quote. Returns 0 on malformed input.
static int read_string(const char **p, char *out, size_t size) {
    const char *s = *p;
    size_t n = 0;
    if (*s++ != '"') return 0;
    while (*s && *s != '"') {
        unsigned long c = (unsigned char)*s++;
        int escaped = c == '\\';
        if (escaped) {
            char e = *s++;
            switch (e) {
                case 'n': c = '\n'; break;
                case 't': c = '\t'; break;
                case 'r': c = '\r'; break;
                case 'b': c = '\b'; break;
                case 'f': c = '\f'; break;
                case 'u': {
                    char hex[5] = {0};
                    if (strlen(s) < 4) return 0;
                    memcpy(hex, s, 4);
                    s += 4;
                    c = strtoul(hex, NULL, 16);
                    if (c >= 0xD800 && c < 0xDC00 && s[0] == '\\' && s[1] == 'u') {
                        memcpy(hex, s + 2, 4);
                        unsigned long low = strtoul(hex, NULL, 16);
                        if (low >= 0xDC00 && low < 0xE000) {
                            c = 0x10000 + ((c - 0xD800) << 10) + (low - 0xDC00);
                            s += 6;
                        }
                    }
                    break;
                }
                case '\0': return 0;
                default: c = (unsigned char)e; break;  // \" \\ \/
            }
        }
        // A \uXXXX escape is encoded as UTF-8; other bytes (UTF-8 already) pass through.
        char buf[4];
        size_t len;
        if (c < 0x80 || !escaped) { buf[0] = (char)c; len = 1; }
        else if (c < 0x800) { buf[0] = (char)(0xC0 | c >> 6); buf[1] = (char)(0x80 | (c & 0x3F)); len = 2; }
        else if (c < 0x10000) { buf[0] = (char)(0xE0 | c >> 12); buf[1] = (char)(0x80 | (c >> 6 & 0x3F)); buf[2] = (char)(0x80 | (c & 0x3F)); len = 3; }
        else { buf[0] = (char)(0xF0 | c >> 18); buf[1] = (char)(0x80 | (c >> 12 & 0x3F)); buf[2] = (char)(0x80 | (c >> 6 & 0x3F)); buf[3] = (char)(0x80 | (c & 0x3F)); len = 4; }
        if (n + len < size) { memcpy(out + n, buf, len); n += len; }
    }
    if (*s != '"') return 0;
    out[n] = '\0';
    *p = s + 1;
    return 1;
}

static void skip_space(const char **p) {
    while (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r') (*p)++;
}

// Skips one JSON value of any kind; returns 0 on malformed input.
static int skip_value(const char **p) {
    char scratch[2];
    skip_space(p);
    if (**p == '"') return read_string(p, scratch, sizeof scratch);
    if (**p == '{' || **p == '[') {
        int depth = 0;
        do {
            if (**p == '"') {
                if (!read_string(p, scratch, sizeof scratch)) return 0;
                continue;
            }
            if (**p == '{' || **p == '[') depth++;
            if (**p == '}' || **p == ']') depth--;
            if (**p == '\0') return 0;
            (*p)++;
        } while (depth > 0);
        return 1;
    }
    while (**p && **p != ',' && **p != '}' && **p != ']') (*p)++;  // number, true, false, null
    return 1;
}

// Finds the top-level string member `key` of the JSON object in `json`.
static int find_string(const char *json, const char *key, char *out, size_t size) {
    char member[MAX_NAME];
    const char *p = json;
    skip_space(&p);
    if (*p++ != '{') return 0;
    for (;;) {
        skip_space(&p);
        if (*p != '"' || !read_string(&p, member, sizeof member)) return 0;
        skip_space(&p);
        if (*p++ != ':') return 0;
        skip_space(&p);
        if (strcmp(member, key) == 0 && *p == '"') return read_string(&p, out, size);
        if (!skip_value(&p)) return 0;
        skip_space(&p);
        if (*p++ != ',') return 0;
    }
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void) {
    static char input[MAX_INPUT + 1];
    size_t length = fread(input, 1, MAX_INPUT, stdin);
    input[length] = '\0';

    char name[MAX_NAME] = "world";
    if (length > 0 && !find_string(input, "name", name, sizeof name)) strcpy(name, "world");
    printf("Hello, %s! (from WebAssembly)\n", name);

    // The workspace is the only directory the sandbox shows: list what is there.
    DIR *workspace = opendir("/workspace");
    if (workspace == NULL) {
        perror("cannot open /workspace");
        return 1;
    }
    char *names[MAX_LISTED];
    int count = 0, total = 0;
    for (struct dirent *entry; (entry = readdir(workspace)) != NULL;) {
        if (entry->d_name[0] == '.') continue;
        if (count < MAX_LISTED) names[count++] = strdup(entry->d_name);
        total++;
    }
    closedir(workspace);
    qsort(names, count, sizeof names[0], by_name);
    printf("/workspace (read-only) holds %d entr%s:", total, total == 1 ? "y" : "ies");
    for (int i = 0; i < count; i++) printf(" %s", names[i]);
    printf("%s\n", total > count ? " ..." : "");
    return 0;
}
