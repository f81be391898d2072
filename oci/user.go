package oci

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// resolveUser turns the container's or image's user ("name", "uid",
// "uid:gid", "name:group") into numeric IDs using the image's /etc/passwd and
// /etc/group, and adds the groups the user belongs to.
func resolveUser(rootfs, imageUser string, c *ContainerConfig) (specs.User, error) {
	var u specs.User
	spec := imageUser
	if c.Username != "" {
		spec = c.Username
	}
	if c.RunAsUser != nil {
		spec = strconv.FormatInt(*c.RunAsUser, 10)
	}
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	passwd := readDB(rootfs, "/etc/passwd")
	groups := readDB(rootfs, "/etc/group")
	switch {
	case userPart == "":
	case isNumber(userPart):
		n, _ := strconv.ParseUint(userPart, 10, 32)
		u.UID = uint32(n)
		for _, e := range passwd {
			if len(e) > 3 && e[2] == userPart {
				u.GID = atou(e[3])
				userPart = e[0]
				break
			}
		}
	default:
		found := false
		for _, e := range passwd {
			if len(e) > 3 && e[0] == userPart {
				u.UID, u.GID, found = atou(e[2]), atou(e[3]), true
				break
			}
		}
		if !found {
			return u, fmt.Errorf("user %q: no such user in the image's /etc/passwd", userPart)
		}
	}
	if hasGroup {
		if isNumber(groupPart) {
			u.GID = atou(groupPart)
		} else {
			found := false
			for _, e := range groups {
				if len(e) > 2 && e[0] == groupPart {
					u.GID, found = atou(e[2]), true
					break
				}
			}
			if !found {
				return u, fmt.Errorf("group %q: no such group in the image's /etc/group", groupPart)
			}
		}
	}
	if c.RunAsGroup != nil {
		u.GID = uint32(*c.RunAsGroup)
	}
	// Supplementary groups: the primary group (as containerd and CRI-O list
	// it), those of the image's /etc/group that name the user (unless the
	// policy is strict), then the caller's; each once.
	add := func(g uint32) {
		if !slices.Contains(u.AdditionalGids, g) {
			u.AdditionalGids = append(u.AdditionalGids, g)
		}
	}
	add(u.GID)
	if userPart != "" && !isNumber(userPart) && !c.StrictSupplementalGroups {
		for _, e := range groups {
			if len(e) > 3 && slices.Contains(strings.Split(e[3], ","), userPart) {
				add(atou(e[2]))
			}
		}
	}
	for _, g := range c.SupplementalGroups {
		add(uint32(g))
	}
	return u, nil
}

// ResolveUser is the user spec ("name", "uid", "name:group", "uid:gid")
// names in the container whose root is rootfs: how an exec's --user is
// turned into IDs, with the groups the user belongs to.
func ResolveUser(rootfs, spec string) (specs.User, error) {
	return resolveUser(rootfs, spec, &ContainerConfig{})
}

func isNumber(s string) bool {
	_, err := strconv.ParseUint(s, 10, 32)
	return err == nil
}

func atou(s string) uint32 {
	n, _ := strconv.ParseUint(s, 10, 32)
	return uint32(n)
}

// readDB reads a colon-separated file of the image; a missing file is empty.
func readDB(rootfs, p string) [][]string {
	path, err := securejoin.SecureJoin(rootfs, p)
	if err != nil {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	return out
}
