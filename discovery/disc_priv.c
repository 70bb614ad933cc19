/* disc_priv: dropping privileges after the sockets are open (see disc/priv.h). */
#include "disc/priv.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* capset(2) directly: libcap is one more dependency for one system call. */
static int clear_capabilities(void)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	memset(data, 0, sizeof(data));
	return (int)syscall(SYS_capset, &hdr, data);
}

enum disc_status disc_priv_drop(const char *user, struct disc_error *err)
{
	if (!user)
		user = DISC_PRIV_DEFAULT_USER;
	if (geteuid() == 0) {
		const struct passwd *pw = getpwnam(user);
		uid_t uid = pw ? pw->pw_uid : 65534;
		gid_t gid = pw ? pw->pw_gid : 65534;

		if (!pw && strcmp(user, DISC_PRIV_DEFAULT_USER) != 0)
			return disc_error_set(err, DISC_ERR_STATE, "no user %s to run as", user);
		if (uid == 0)
			return disc_error_set(err, DISC_ERR_STATE, "user %s is root", user);
		/* Groups first: after setresuid we could no longer change them. */
		if (setgroups(0, NULL) != 0 || setresgid(gid, gid, gid) != 0 ||
		    setresuid(uid, uid, uid) != 0)
			return disc_error_set(err, DISC_ERR_STATE, "cannot switch to user %s: %s",
					      user, strerror(errno));
		if (setuid(0) == 0)
			return disc_error_set(err, DISC_ERR_STATE,
					      "could regain root after switching to %s", user);
#if defined(__SANITIZE_ADDRESS__)
		/*
		 * Changing ids makes the process non-dumpable, and LeakSanitizer's
		 * exit-time check attaches to the process with ptrace, which that
		 * forbids. Only sanitizer builds (tests) turn it back on.
		 */
		prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
#endif
	} else if (clear_capabilities() != 0) {
		return disc_error_set(err, DISC_ERR_STATE, "cannot drop capabilities: %s",
				      strerror(errno));
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return disc_error_set(err, DISC_ERR_STATE, "cannot set no_new_privs: %s",
				      strerror(errno));
	return DISC_OK;
}
