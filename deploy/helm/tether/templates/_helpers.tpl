{{/* Names, labels and the pieces every tether container shares. */}}

{{- define "tether.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "tether.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "tether.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "tether.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "tether.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "tether.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component: server, controller, retrain, mlflow. */}}
{{- define "tether.selector" -}}
app.kubernetes.io/name: {{ include "tether.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "tether.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "tether.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "tether.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "tether.secretName" -}}
{{- default (printf "%s-secrets" (include "tether.fullname" .)) .Values.secrets.existingSecret -}}
{{- end -}}

{{- define "tether.trackingUri" -}}
{{- if .Values.mlflow.trackingUri -}}
{{- .Values.mlflow.trackingUri -}}
{{- else if .Values.mlflowServer.enabled -}}
{{- printf "http://%s-mlflow:%d" (include "tether.fullname" .) (int .Values.mlflowServer.port) -}}
{{- else -}}
{{- fail "set mlflow.trackingUri (an MLflow tracking server) or mlflowServer.enabled=true" -}}
{{- end -}}
{{- end -}}

{{/* Environment every tether process gets: where the registry, the store and the policy are,
     and the secrets, each optional so a missing key leaves the variable unset. */}}
{{- define "tether.env" -}}
- name: TETHER_CONFIG
  value: /etc/tether/tether.yaml
- name: TETHER_HOME
  value: /var/lib/tether
- name: TETHER_TRACKING_URI
  value: {{ include "tether.trackingUri" . | quote }}
{{- with .Values.mlflow.registryUri }}
- name: TETHER_REGISTRY_URI
  value: {{ . | quote }}
{{- end }}
{{- with .Values.mlflow.artifactRoot }}
- name: TETHER_ARTIFACT_ROOT
  value: {{ . | quote }}
{{- end }}
- name: TETHER_POLL_SECONDS
  value: {{ .Values.pollSeconds | quote }}
- name: MLFLOW_DISABLE_TELEMETRY
  value: "true"
{{- $secret := include "tether.secretName" . }}
{{- range $name, $key := .Values.secrets.keys }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $key }}
      optional: true
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "tether.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsUser }}
fsGroup: {{ .Values.securityContext.runAsUser }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "tether.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/* The policy folder (ConfigMap) and a writable home; every tether container mounts both. */}}
{{- define "tether.volumeMounts" -}}
- name: policy
  mountPath: /etc/tether
  readOnly: true
- name: home
  mountPath: /var/lib/tether
- name: tmp
  mountPath: /tmp
{{- end -}}

{{- define "tether.volumes" -}}
- name: policy
  configMap:
    name: {{ include "tether.fullname" . }}-policy
- name: home
  emptyDir: {}
- name: tmp
  emptyDir: {}
{{- end -}}

{{/* Labels of a pod template: its component's selector plus the chart's version labels. */}}
{{- define "tether.podLabels" -}}
{{ include "tether.selector" . }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
{{- end -}}

{{/* The SuperLink the retrain Job and the demo SuperNodes use: this chart's or another. */}}
{{- define "tether.flowerSuperlink" -}}
{{- if .Values.flower.superlinkAddress -}}
{{ .Values.flower.superlinkAddress }}
{{- else if .Values.flower.superlink.enabled -}}
{{ printf "%s-superlink:%v" (include "tether.fullname" .) .Values.flower.superlink.port }}
{{- end -}}
{{- end -}}
