// Tries everything a sandboxed skill must not do, and what it may, printing one line each:
// "<attempt>: ok" or "<attempt>: denied (<error>)". Always exits 0.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

static void report(const char *attempt, int ok) {
    if (ok) printf("%s: ok\n", attempt);
    else printf("%s: denied (%s)\n", attempt, strerror(errno));
}

static int can_read(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    close(fd);
    return 1;
}

static int can_list(const char *path) {
    DIR *dir = opendir(path);
    if (dir == NULL) return 0;
    closedir(dir);
    return 1;
}

int main(void) {
    // Allowed: reading the workspace.
    report("read /workspace/inside.txt", can_read("/workspace/inside.txt"));
    report("list /workspace", can_list("/workspace"));
    // Writing the workspace, in every way.
    int fd = open("/workspace/new.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    report("create /workspace/new.txt", fd >= 0);
    fd = open("/workspace/inside.txt", O_WRONLY | O_APPEND);
    report("append to /workspace/inside.txt", fd >= 0);
    fd = open("/workspace/inside.txt", O_WRONLY | O_TRUNC);
    report("truncate /workspace/inside.txt", fd >= 0);
    report("mkdir /workspace/newdir", mkdir("/workspace/newdir", 0755) == 0);
    report("unlink /workspace/inside.txt", unlink("/workspace/inside.txt") == 0);
    report("rename /workspace/inside.txt", rename("/workspace/inside.txt", "/workspace/moved.txt") == 0);
    // Everything outside the workspace.
    report("read /workspace/../outside.txt", can_read("/workspace/../outside.txt"));
    report("read /workspace/link-out/outside.txt", can_read("/workspace/link-out/outside.txt"));
    report("read /etc/passwd", can_read("/etc/passwd"));
    report("list /", can_list("/"));
    report("list /tmp", can_list("/tmp"));
    int variables = 0;
    for (char **entry = environ; *entry != NULL; entry++) variables++;
    printf("environment variables: %d\n", variables);
    return 0;
}
