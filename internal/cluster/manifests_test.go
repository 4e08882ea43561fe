package cluster_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/tfflowers/tfflowers/internal/cluster"
	"github.com/tfflowers/tfflowers/internal/tftest"
)

// k8sObject is the part of a Kubernetes object the test reads.
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		ClusterIP   string `yaml:"clusterIP"`
		ServiceName string `yaml:"serviceName"`
		Replicas    int    `yaml:"replicas"`
		Ports       []struct {
			Port int `yaml:"port"`
		} `yaml:"ports"`
		Template struct {
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	Containers []struct {
		Image   string   `yaml:"image"`
		Command []string `yaml:"command"`
		Args    []string `yaml:"args"`
		Ports   []struct {
			ContainerPort int `yaml:"containerPort"`
		} `yaml:"ports"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
		} `yaml:"volumeMounts"`
	} `yaml:"containers"`
	Volumes []struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name string `yaml:"name"`
		} `yaml:"configMap"`
	} `yaml:"volumes"`
}

func loadManifests(t *testing.T) map[string]k8sObject {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(tftest.Root(t), "deploy", "kubernetes", "*.yaml"))
	if len(files) == 0 {
		t.Fatal("no manifests in deploy/kubernetes")
	}
	objs := map[string]k8sObject{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		for {
			var o k8sObject
			if err := dec.Decode(&o); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			objs[o.Kind+"/"+o.Metadata.Name] = o
		}
	}
	return objs
}

// clusterFileIn returns the path at which pod spec p sees the cluster ConfigMap's file.
func clusterFileIn(t *testing.T, p podSpec, configMap string) string {
	t.Helper()
	for _, v := range p.Volumes {
		if v.ConfigMap != nil && v.ConfigMap.Name == configMap {
			for _, m := range p.Containers[0].VolumeMounts {
				if m.Name == v.Name {
					return m.MountPath + "/cluster.json"
				}
			}
		}
	}
	t.Fatalf("pod does not mount ConfigMap %s", configMap)
	return ""
}

// TestKubernetesManifestsDescribeTheirCluster checks that the cluster spec in the
// ConfigMap, read as `tfflowers worker` and `train --cluster` read it (cluster.Parse),
// names exactly the StatefulSet's pods by their headless-Service DNS names on the port
// the workers listen on; that each worker pod derives its own --task from its name; and
// that the workers and the chief read that file.
func TestKubernetesManifestsDescribeTheirCluster(t *testing.T) {
	objs := loadManifests(t)
	cm, ok := objs["ConfigMap/tfflowers-cluster"]
	if !ok {
		t.Fatal("no ConfigMap tfflowers-cluster")
	}
	spec, err := cluster.Parse([]byte(cm.Data["cluster.json"]), "ConfigMap tfflowers-cluster")
	if err != nil {
		t.Fatal(err)
	}
	sts, ok := objs["StatefulSet/tfflowers-worker"]
	if !ok {
		t.Fatal("no StatefulSet tfflowers-worker")
	}
	svc, ok := objs["Service/"+sts.Spec.ServiceName]
	if !ok || svc.Spec.ClusterIP != "None" {
		t.Fatalf("the StatefulSet's service %q is missing or not headless", sts.Spec.ServiceName)
	}
	pod := sts.Spec.Template.Spec
	port := pod.Containers[0].Ports[0].ContainerPort
	if svc.Spec.Ports[0].Port != port {
		t.Fatalf("Service port %d, worker port %d", svc.Spec.Ports[0].Port, port)
	}
	if len(spec.Workers()) != sts.Spec.Replicas {
		t.Fatalf("cluster.json lists %d workers, the StatefulSet runs %d", len(spec.Workers()), sts.Spec.Replicas)
	}
	for i, addr := range spec.Workers() {
		if want := fmt.Sprintf("%s-%d.%s:%d", sts.Metadata.Name, i, sts.Spec.ServiceName, port); addr != want {
			t.Fatalf("worker %d is %s, the StatefulSet's pod %d is %s", i, addr, i, want)
		}
	}
	// The worker command, run by a shell in pod N with `tfflowers` swapped for echo.
	file := clusterFileIn(t, pod, "tfflowers-cluster")
	cmd := pod.Containers[0].Command
	if len(cmd) != 3 || cmd[0] != "sh" {
		t.Fatalf("worker command %q: want sh -c '...'", cmd)
	}
	for i := range spec.Workers() {
		sh := exec.Command("sh", "-c", strings.Replace(cmd[2], "exec tfflowers", "echo", 1))
		sh.Env = []string{fmt.Sprintf("HOSTNAME=%s-%d", sts.Metadata.Name, i)}
		out, err := sh.Output()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := strings.TrimSpace(string(out)), fmt.Sprintf("worker --cluster %s --task %d", file, i); got != want {
			t.Fatalf("pod %d runs %q, want %q", i, got, want)
		}
	}
	job, ok := objs["Job/tfflowers-train"]
	if !ok {
		t.Fatal("no Job tfflowers-train")
	}
	chief := job.Spec.Template.Spec
	args := strings.Join(chief.Containers[0].Args, " ")
	if !strings.HasPrefix(args, "train ") || !strings.Contains(args, "--cluster "+clusterFileIn(t, chief, "tfflowers-cluster")) {
		t.Fatalf("chief args %q: want train --cluster with the ConfigMap's file", args)
	}
	if chief.Containers[0].Image != pod.Containers[0].Image {
		t.Fatalf("chief image %s, workers %s", chief.Containers[0].Image, pod.Containers[0].Image)
	}
}
