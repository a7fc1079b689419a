package bench

import (
	"bytes"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A VM whose process the bench could not start for want of a host
// resource says which in VM.Limit, from the errno, whatever its error's
// text; the JSON keeps it, and a report without it (an older one) still
// reads.
func TestParallelVMLimit(t *testing.T) {
	tests := []struct {
		name  string
		what  string // "" for a failed fork
		errno syscall.Errno
		want  Limit
		fact  string // in the VM's error
	}{
		{"console pipe EMFILE", "console pipe", syscall.EMFILE, LimitFileDescriptors, "(out of file descriptors: RLIMIT_NOFILE is "},
		{"ready pipe ENFILE", "ready pipe", syscall.ENFILE, LimitFileDescriptors, "(out of file descriptors: RLIMIT_NOFILE is "},
		{"fork EBADF", "", syscall.EBADF, LimitFileDescriptors, "(out of file descriptors: RLIMIT_NOFILE is "},
		{"fork EAGAIN", "", syscall.EAGAIN, LimitTasks, "(no more processes: a task limit is reached: RLIMIT_NPROC, kernel.threads-max, kernel.pid_max or a cgroup's pids.max)"},
		{"fork ENOMEM", "", syscall.ENOMEM, LimitMemory, "cannot allocate memory"},
		{"pipe ENOMEM", "console pipe", syscall.ENOMEM, LimitMemory, "cannot allocate memory"},
		{"fork ENOENT", "", syscall.ENOENT, "", "no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error = tt.errno
			l := fdLimit(err)
			if tt.what == "" {
				err = &os.PathError{Op: "fork/exec", Path: "/x", Err: tt.errno}
				l = startLimit(err)
			}
			v := &parallelVM{}
			v.failStart(tt.what, err, l)
			r := v.result(0, time.Second)
			if r.Limit != tt.want || !strings.Contains(r.Error, tt.fact) {
				t.Errorf("limit %q, error %q: want %q, and %q in it", r.Limit, r.Error, tt.want, tt.fact)
			}
			res := &ParallelResults{Schema: ParallelSchemaVersion, N: 1, VMs: []VM{r}}
			res.aggregate()
			var js bytes.Buffer
			if err := res.WriteJSON(&js); err != nil {
				t.Fatal(err)
			}
			if hasField := strings.Contains(js.String(), `"limit":`); hasField != (tt.want != "") {
				t.Errorf("JSON has a limit %v, want %v:\n%s", hasField, tt.want != "", js.String())
			}
			back, err := ReadParallelResults(&js)
			if err != nil {
				t.Fatal(err)
			}
			if back.VMs[0].Limit != tt.want {
				t.Errorf("limit read back %q, want %q", back.VMs[0].Limit, tt.want)
			}
		})
	}
	// The tasks after one that could not be created are not tried: they
	// found the same limit.
	v := &parallelVM{}
	v.fail(notCreated(3), LimitTasks)
	if r := v.result(0, time.Second); r.Limit != LimitTasks || !strings.Contains(r.Error, "VM 3 could not be created") {
		t.Errorf("after VM 3: limit %q, error %q", r.Limit, r.Error)
	}
}

// A VM that ended by itself says which resource it found exhausted, when
// its end or standard error says: the OOM killer's kill (known or
// likely) is memory, its own ENOMEM too, a runtime that could create no
// thread a task limit. So does one not started in time.
func TestParallelVMEndLimit(t *testing.T) {
	yes, no := true, false
	kill := &vmEnd{status: "signal: killed", sigkill: true}
	exit := &vmEnd{status: "exit status 2"}
	tests := []struct {
		name     string
		end      *vmEnd
		oomKills *bool
		stderr   string
		want     Limit
	}{
		{"OOM killer", kill, &yes, "", LimitMemory},
		{"likely the OOM killer", kill, nil, "", LimitMemory},
		{"not the OOM killer", kill, &no, "", ""},
		{"own ENOMEM", exit, &no, "smolvmm bench: KVM_CREATE_VM: " + syscall.ENOMEM.Error(), LimitMemory},
		{"no thread", exit, nil, "runtime: failed to create new OS thread (have 7 already; errno=11)", LimitTasks},
		{"pthread_create", exit, nil, "runtime/cgo: pthread_create failed: Resource temporarily unavailable", LimitTasks},
		{"another exit", exit, &yes, "the guest crashed: triple fault", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := &parallelVM{end: tt.end, stderr: &tailBuffer{max: 512}, endWhat: "before its first console byte", oomKills: tt.oomKills}
			v.stderr.Write([]byte(tt.stderr))
			if r := v.result(0, time.Second); r.Limit != tt.want {
				t.Errorf("limit %q (error %q), want %q", r.Limit, r.Error, tt.want)
			}
			late := &parallelVM{stderr: &tailBuffer{max: 512}}
			late.stderr.Write([]byte(tt.stderr))
			if r := late.result(0, time.Second); tt.stderr != "" && r.Limit != tt.want {
				t.Errorf("not started in time: limit %q (error %q), want %q", r.Limit, r.Error, tt.want)
			}
		})
	}
}

// A started VM found no limit: a report that says it did is not one
// the bench wrote.
func TestValidateStartedLimit(t *testing.T) {
	res := &ParallelResults{Schema: ParallelSchemaVersion, N: 1, VMs: []VM{{StartMS: 1, FirstOutputMS: 2, ReadyMS: 2,
		MemoryError: "x", Limit: LimitMemory}}}
	res.aggregate()
	if err := res.Validate(); err == nil {
		t.Errorf("%+v: valid", res.VMs[0])
	}
}
