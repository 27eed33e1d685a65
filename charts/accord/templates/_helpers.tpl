{{/*
Names are fixed, not derived from the release: the ClientIntents CRD (crds/, never templated)
names the webhook Service accord-operator-webhook in accord-system, the operator patches the
ValidatingWebhookConfiguration accord-operator by name, and its ClusterRole names both. One
release per cluster, in accord-system.
*/}}

{{- define "accord.namespace" -}}
{{- if ne .Release.Namespace "accord-system" -}}
{{- fail (printf "install Accord into the namespace accord-system (helm install --namespace accord-system --create-namespace), not %q: the ClientIntents CRD in crds/ sends conversion requests to the Service accord-operator-webhook in accord-system" .Release.Namespace) -}}
{{- end -}}
{{- .Release.Namespace -}}
{{- end -}}

{{- define "accord.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "accord.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: accord
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "accord.operator.selectorLabels" -}}
app.kubernetes.io/name: accord-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "accord.operator.labels" -}}
{{ include "accord.labels" . }}
{{ include "accord.operator.selectorLabels" . }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "accord.dashboard.selectorLabels" -}}
app.kubernetes.io/name: accord-dashboard
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "accord.dashboard.labels" -}}
{{ include "accord.labels" . }}
{{ include "accord.dashboard.selectorLabels" . }}
app.kubernetes.io/component: dashboard
{{- end -}}

{{/* The webhooks' Service DNS name, what the serving certificate is issued for. */}}
{{- define "accord.webhook.host" -}}
accord-operator-webhook.{{ include "accord.namespace" . }}.svc
{{- end -}}

{{- define "accord.certManager" -}}
{{- if eq .Values.operator.webhooks.certificates "certManager" }}true{{ end -}}
{{- end -}}

{{/* Pod and container security: the image runs as distroless's nonroot user. */}}
{{- define "accord.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile: {type: RuntimeDefault}
{{- end -}}

{{- define "accord.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities: {drop: [ALL]}
{{- end -}}

{{- define "accord.apply.secretName" -}}
{{- .Values.dashboard.apply.existingSecret | default "accord-dashboard-apply-token" -}}
{{- end -}}
